"""The ``medcoding`` command. Each sub-command lives in the module that owns its concept.

``medcoding NAME ARGS...`` imports only that module and calls its ``main(argv)``, so a light
command (``generate``) never pays for importing torch.

An error the user can fix (a missing file, bad input, a refused setting) is printed as one
message, ``medcoding NAME: ...``, with exit status 1; ``--debug`` (anywhere on the command line)
lets it raise with its full traceback.
"""

from __future__ import annotations

import importlib
import sys
import warnings

COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("medcoding.cohort.synthetic.generator",
                 "generate a synthetic cohort in the data contract"),
    "import-mimic": ("medcoding.cohort.mimic", "convert MIMIC-IV CSV files to the data contract"),
    "prepare": ("medcoding.cohort.preprocess", "filter, concatenate and split a cohort"),
    "train": ("medcoding.train", "train a PLM-CA model on prepared splits"),
    "predict": ("medcoding.predict", "score notes with a trained model"),
    "explain": ("medcoding.explain", "AttInGrad explanation page for one course"),
    "run": ("medcoding.pipeline", "run a profile's notebooks with papermill and build the book"),
    "baselines": ("medcoding.baselines", "prior, dictionary and TF-IDF baselines on prepared data"),
    "describe": ("medcoding.describe", "descriptive figures of a cohort in the data contract"),
}


#: Errors worded for the user: printed without a traceback (``--debug`` shows it).
EXPECTED_ERRORS = (OSError, ValueError, LookupError)


def usage() -> str:
    lines = ["usage: medcoding [--debug] COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<14}{help_text}" for name, (_, help_text) in COMMANDS.items()]
    lines += ["", "medcoding COMMAND --help shows a command's options; --debug shows the "
              "traceback of an error."]
    return "\n".join(lines)


def error_message(err: BaseException) -> str:
    """The message of an error, without the quotes ``str(KeyError)`` adds."""
    if isinstance(err, KeyError) and len(err.args) == 1:
        return str(err.args[0])
    return str(err) or type(err).__name__


def show_plain_warnings(name: str) -> None:
    """Print medcoding's own warnings as ``medcoding NAME: message`` (no source line)."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if category.__module__.startswith("medcoding"):
            print(f"medcoding {name}: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    if not argv or argv[0] in {"-h", "--help"}:
        print(usage())
        return 0
    if argv[0] == "--version":
        from medcoding import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"medcoding: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    show_plain_warnings(name)
    if debug:
        return int(module.main(rest) or 0)
    try:
        return int(module.main(rest) or 0)
    except EXPECTED_ERRORS as err:
        print(f"medcoding {name}: {error_message(err)}\n(medcoding --debug {name} ... shows "
              "the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

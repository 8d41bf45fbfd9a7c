"""The ``medcoding`` command. Each sub-command lives in the module that owns its concept.

``medcoding NAME ARGS...`` imports only that module and calls its ``main(argv)``, so a light
command (``generate``) never pays for importing torch.
"""

from __future__ import annotations

import importlib
import sys

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


def usage() -> str:
    lines = ["usage: medcoding COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<14}{help_text}" for name, (_, help_text) in COMMANDS.items()]
    lines += ["", "medcoding COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())

"""The book pipeline: run a profile's notebooks with papermill, then build the Jupyter Book.

``medcoding run --profile NAME [-p KEY VALUE ...]`` does, in order:

1. load ``params/NAME.yaml`` (a flat mapping of papermill parameters; ``extends: OTHER`` starts
   from another profile) and apply the ``-p`` overrides (values parsed as YAML, so ``2000`` is an
   int and ``'["F32-F33"]'`` a list);
2. stage a copy of the book in ``<run_dir>/book/`` (``_config.yml``, the prose in ``book/``, the
   page style in ``_static/``, and a ``_toc.yml`` that lists only the notebooks present in
   ``notebooks/``);
3. execute each notebook of ``_toc.yml`` in order with papermill into
   ``<run_dir>/book/notebooks/``, passing it only the parameters it declares. A step is skipped
   when its key equals the key recorded in ``<run_dir>/steps/NAME.json`` by its last successful
   run. The key hashes the notebook's cells, its parameters, the keys of the steps it depends
   on, the environment (every file of the installed ``medcoding`` package and the installed
   versions of Python and of the package's requirements, followed transitively) and the
   contents of every input its parameters name (a ``*_dir``/``*_path`` parameter other than
   ``run_dir``, or a local ``encoder``, that exists: e.g. ``cohort_dir``). So editing the package,
   upgrading a library or re-extracting a cohort into the same folder re-runs what it affects,
   and nothing else. A notebook is executed into a temporary file and renamed on success, so a
   failing notebook leaves the previous good output in place; the failed copy is kept as
   ``<run_dir>/steps/NAME.failed.ipynb`` and the run stops with the failing cell shown. The
   parameter cells (the notebook's and papermill's injected one) are tagged ``remove-cell`` in
   the executed copy, so the book does not show them;
4. ``jupyter-book build <run_dir>/book --all -W -n --keep-going``: every page, so no page keeps
   a stale value glued from another chapter; the HTML is in ``<run_dir>/book/_build/html``.

``--validate-only`` re-executes the executed notebooks with nbval instead (same seed, same
numbers), for the profile with the same ``-p`` overrides and ``--run-dir``; it refuses a book
whose steps are not current for them (run the profile first). A notebook states which earlier
steps it reads in its metadata (``{"medcoding": {"depends_on": ["01_cohort"]}}``); without that
it depends on every earlier step.

Why not a workflow engine: snakemake decides staleness from file times (plus code and parameter
triggers on its rules), not from the contents of the Python package a notebook imports or of an
input folder, and would bring a large dependency tree; ploomber has had no release since 0.23.3
(September 2024). Neither is installed here. This layer is one module of content keys, tested as
such.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

import yaml
from pydantic import Field

from medcoding import config as configs
from medcoding import runs
from medcoding.config import Fraction, NonNegativeInt, PositiveFloat, PositiveInt
from medcoding.io import atomic_path, read_json, write_json, write_text
from medcoding.modeldir import file_sha256

BOOK_FILES = ("_config.yml", "book", "_static")
NBVAL_SANITIZE = "nbval_sanitize.cfg"
#: Environment of the notebook kernels: no progress bars or library chatter in the outputs, which
#: nbval compares text by text (progress bars hold timings).
QUIET_KERNEL_ENV = {
    "TQDM_DISABLE": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
#: Tags of the cells that hold a run's parameters: the notebook's defaults and the cell papermill
#: injects with the profile's values. The rendered book leaves both out (myst-nb's ``remove-cell``);
#: the values a step ran with are in ``<run_dir>/steps/NAME.json``.
PARAMETER_TAGS = ("parameters", "injected-parameters")


class PipelineError(RuntimeError):
    """A problem with a profile, an override or a notebook, worded for the analyst."""


class StepFailed(PipelineError):
    """A notebook raised: the message names the cell; ``peak_mb`` is the kernel's peak memory."""

    def __init__(self, peak_mb: float, message: str) -> None:
        super().__init__(message)
        self.peak_mb = peak_mb


@dataclass(frozen=True)
class Step:
    """One notebook of the book, in ``_toc.yml`` order."""

    name: str  # "01_cohort"
    source: Path  # notebooks/01_cohort.ipynb in the project
    depends_on: tuple[str, ...]


@dataclass
class StepResult:
    """What happened to one step: ``ran``, ``skipped``, ``missing`` or ``failed``."""

    name: str
    status: str
    key: str = ""
    seconds: float = 0.0
    peak_mb: float = 0.0
    message: str = ""


@dataclass
class RunReport:
    """The outcome of ``run_profile``: one result per step, then the book build."""

    run: runs.Run
    steps: list[StepResult] = field(default_factory=list)
    book_seconds: float = 0.0
    book_peak_mb: float = 0.0
    book_returncode: int | None = None

    @property
    def ok(self) -> bool:
        failed = any(step.status == "failed" for step in self.steps)
        return not failed and self.book_returncode in (None, 0)


# --- profiles and parameters -------------------------------------------------------------------

Count = Annotated[int | float, Field(ge=0)]  # a fraction of the patients below 1, else a count


class Profile(TypedDict, total=False):
    """The type and range of every profile key (a notebook parameter), checked with
    :mod:`medcoding.config` in each profile file and ``-p`` override before anything runs.

    A notebook parameter missing here is passed on unchecked; a test keeps the book's parameters
    and this list equal. ``synthetic_overrides`` is checked as a ``SyntheticConfig``.
    """

    run_dir: str
    seed: NonNegativeInt
    cohort_dir: str | None
    n_patients: PositiveInt
    synthetic_overrides: dict[str, Any]
    val_patients: Count
    test_patients: Count
    min_category_count: NonNegativeInt
    encoder: str
    train_size: PositiveInt | None
    epochs: PositiveInt
    batch_size: PositiveInt
    learning_rate: PositiveFloat | None
    head_learning_rate: PositiveFloat | None
    patience: PositiveInt
    train_full_level: bool
    full_epochs: PositiveInt
    encoder_dropout: Fraction | None
    encoder_layers: PositiveInt | None
    frozen_layers: NonNegativeInt
    bootstrap_resamples: PositiveInt
    ladder_sizes: Annotated[list[PositiveInt], Field(min_length=1)]
    ladder_encoder: str
    ladder_epochs: PositiveInt
    ladder_test_patients: PositiveInt | None
    model_name: str
    min_department_courses: NonNegativeInt
    min_code_count: NonNegativeInt
    bins_per_decade: PositiveInt
    ks: Annotated[list[PositiveInt], Field(min_length=1)]
    sweep_codes: list[str]
    sweep_thresholds: Annotated[list[Fraction], Field(min_length=1)]
    flag_threshold: Fraction | None
    review_sample_size: NonNegativeInt
    allow_note_text: bool
    specific_diabetes: str
    unspecified_diabetes: str
    specific_min: Fraction
    unspecified_max: Fraction
    low_confidence: Fraction
    low_confidence_code: str
    min_val_support: NonNegativeInt
    gallery_size: NonNegativeInt
    faithfulness_cases: NonNegativeInt
    faithfulness_ks: Annotated[list[PositiveInt], Field(min_length=1)]
    top_k: PositiveInt


def check_profile_values(values: dict, source: str) -> None:
    """Refuse a value of the wrong type or out of range (:class:`Profile`), naming ``source``."""
    from medcoding.cohort.synthetic.config import SyntheticConfig

    known = configs.schema(Profile)
    try:
        configs.check(Profile, {key: value for key, value in values.items() if key in known},
                      source)
        if isinstance(values.get("synthetic_overrides"), dict):
            SyntheticConfig.from_dict(values["synthetic_overrides"],
                                      f"{source}: synthetic_overrides")
    except configs.ConfigError as err:
        raise PipelineError(str(err)) from None


def parse_value(text: str) -> Any:
    """Parse a ``-p`` value as YAML: ``2000`` → int, ``0.1`` → float, ``[a, b]`` → list."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PipelineError(f"cannot parse parameter value {text!r} as YAML: {err}") from err


def load_profile(
    name: str,
    params_dir: Path,
    overrides: dict[str, Any] | None = None,
    declared: Sequence[str] = (),
) -> dict:
    """Read ``params_dir/NAME.yaml`` (following ``extends``) and apply ``overrides``.

    An override must name a key of the profile or a parameter some notebook declares
    (``declared``); anything else is refused, because a misspelt key would be ignored silently.
    """
    params = _read_profile(name, params_dir, seen=())
    overrides = overrides or {}
    check_profile_values(overrides, "-p override")
    unknown = sorted(set(overrides) - set(params) - set(declared))
    if unknown:
        known = sorted(set(params) | set(declared))
        raise PipelineError(
            f"unknown parameter(s) {unknown} for profile {name!r} "
            f"({params_dir / (name + '.yaml')});"
            f" known parameters: {known}. Check the spelling, or add the key to the profile."
        )
    return {**params, **overrides}


def check_profile_keys(params: dict, declared: Sequence[str], name: str, params_dir: Path) -> None:
    """Refuse a profile key that no notebook declares: it would be ignored silently."""
    unused = sorted(set(params) - set(declared))
    if unused:
        raise PipelineError(
            f"{params_dir / (name + '.yaml')}: key(s) {unused} of profile {name!r} are not a "
            f"parameter of any notebook, so they would have no effect; fix: remove or rename "
            f"them (notebook parameters: {sorted(set(declared))})")


def resolve_paths(params: dict, root: Path) -> dict:
    """Make path parameters absolute against the project root.

    Path parameters are those named ``*_dir`` or ``*_path``, and ``encoder`` when it is a path
    (``minilm`` and ``tiny`` are names). Notebooks run with their own folder as working
    directory, so relative paths would otherwise mean different things in papermill and nbval.
    """
    resolved = dict(params)
    for key, value in params.items():
        if _is_path_parameter(key, value):
            resolved[key] = str(_resolve(root, value))
    return resolved


def _is_path_parameter(key: str, value: Any) -> bool:
    is_path_key = key.endswith(("_dir", "_path")) or (key == "encoder" and "/" in str(value))
    return is_path_key and isinstance(value, str) and bool(value)


def _read_profile(name: str, params_dir: Path, seen: tuple[str, ...]) -> dict:
    path = params_dir / f"{name}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in params_dir.glob("*.yaml"))
        raise PipelineError(f"no profile {name!r}: {path} does not exist; available: {available}")
    if name in seen:
        raise PipelineError(f"profile {path} extends itself through {' -> '.join(seen)}")
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(loaded, dict):
        raise PipelineError(f"{path} must hold a mapping of parameter names to values")
    parent = loaded.pop("extends", None)
    check_profile_values(loaded, str(path))
    base = _read_profile(parent, params_dir, seen + (name,)) if parent else {}
    return {**base, **loaded}


def declared_parameters(notebook: Path) -> list[str]:
    """Names assigned in the notebook's cell tagged ``parameters`` (papermill's view)."""
    import papermill

    return list(papermill.inspect_notebook(str(notebook)))


def parameters_for(notebook: Path, params: dict) -> dict:
    """The subset of ``params`` that ``notebook`` declares in its ``parameters`` cell."""
    declared = declared_parameters(notebook)
    return {key: params[key] for key in declared if key in params}


# --- steps --------------------------------------------------------------------------------------


def toc_files(toc_path: Path) -> list[str]:
    """Every ``file:`` entry of a Jupyter Book ``_toc.yml``, root first, in reading order."""
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []):
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(toc)
    return files


def notebook_entries(toc_path: Path) -> list[str]:
    """The ``notebooks/...`` entries of the toc (without suffix), in pipeline order."""
    return [entry for entry in toc_files(toc_path) if entry.startswith("notebooks/")]


def discover_steps(root: Path) -> tuple[list[Step], list[str]]:
    """Steps for the notebooks of ``root/_toc.yml`` that exist, and the entries that do not."""
    steps: list[Step] = []
    missing: list[str] = []
    for entry in notebook_entries(root / "_toc.yml"):
        source = root / f"{entry}.ipynb"
        if not source.is_file():
            missing.append(entry)
            continue
        metadata = json.loads(source.read_text(encoding="utf-8")).get("metadata", {})
        declared = metadata.get("medcoding", {}).get("depends_on")
        earlier = [step.name for step in steps]
        depends_on = tuple(d for d in declared if d in earlier) if declared is not None else earlier
        steps.append(Step(name=source.stem, source=source, depends_on=tuple(depends_on)))
    return steps, missing


def step_key(step: Step, params: dict, upstream_keys: dict[str, str], environment: str,
             inputs: dict[str, str]) -> str:
    """Hash of the notebook source, its parameters, the keys of the steps it depends on, the
    environment (:func:`environment_key`) and the fingerprints of its inputs
    (:func:`input_fingerprints`)."""
    digest = hashlib.sha256()
    digest.update(_notebook_code(step.source).encode("utf-8"))
    digest.update(json.dumps(params, sort_keys=True, default=str).encode("utf-8"))
    for name in step.depends_on:
        digest.update(f"{name}={upstream_keys.get(name, '')}".encode())
    digest.update(f"environment={environment}".encode())
    for key, fingerprint in sorted(inputs.items()):
        digest.update(f"input {key}={fingerprint}".encode())
    return digest.hexdigest()


def plan_keys(steps: Sequence[Step], params: dict, environment: str) -> dict[str, str]:
    """Every step's key for ``params`` (path parameters already resolved), in order."""
    keys: dict[str, str] = {}
    fingerprints: dict[str, str] = {}  # one pass over each input, however many steps read it
    for step in steps:
        step_params = parameters_for(step.source, params)
        keys[step.name] = step_key(step, step_params, keys, environment,
                                   input_fingerprints(step_params, fingerprints))
    return keys


def _notebook_code(notebook: Path) -> str:
    """The notebook's cell sources and types: outputs and execution counts do not count."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return json.dumps([(cell["cell_type"], _source(cell)) for cell in cells])


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


# --- what a step's results depend on besides its notebook ---------------------------------------


def package_source_digest(package_dir: Path | None = None) -> str:
    """SHA-256 over every file of the ``medcoding`` package: relative path and bytes of each
    (modules, data files, assets); ``__pycache__`` is left out."""
    if package_dir is None:
        import medcoding

        package_dir = Path(medcoding.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(Path(package_dir).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(f"{path.relative_to(package_dir).as_posix()}={file_sha256(path)};"
                          .encode())
    return digest.hexdigest()


def library_versions(distribution: str = "medcoding") -> dict[str, str]:
    """Installed versions of Python and of ``distribution``'s requirements, transitively."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    root = canonicalize_name(distribution)
    versions = {"python": platform.python_version()}
    pending, seen = [root], set()
    while pending:
        name = canonicalize_name(pending.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            installed = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if name != root:
            versions[name] = installed.version
        for text in installed.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return dict(sorted(versions.items()))


def machine_precision() -> str:
    """What ``--precision auto`` resolves to on this machine (``bf16`` or ``fp32``)."""
    from medcoding import precision as precisions  # torch: imported only when a key is needed

    return precisions.resolve("auto", precisions.default_device()).precision


def environment_key(package_dir: Path | None = None,
                    versions: dict[str, str] | None = None,
                    precision: str | None = None) -> str:
    """Hash of the package source, the library versions and the precision ``auto`` resolves to
    (defaults: what is installed, :func:`machine_precision`): a book computed in bfloat16 on one
    machine is not reused on one that trains in float32."""
    versions = library_versions() if versions is None else versions
    precision = machine_precision() if precision is None else precision
    text = json.dumps({"package": package_source_digest(package_dir), "libraries": versions,
                       "precision": precision}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def path_fingerprint(path: Path) -> str:
    """SHA-256 of a file's bytes, or over a folder's files (relative path and bytes of each).

    Hidden files (names starting with ``.``, such as the temporary files of an atomic write)
    are left out.
    """
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        relative = item.relative_to(path)
        if item.is_file() and not any(part.startswith(".") for part in relative.parts):
            digest.update(f"{relative.as_posix()}={file_sha256(item)};".encode())
    return digest.hexdigest()


def input_fingerprints(step_params: dict, cache: dict[str, str] | None = None) -> dict[str, str]:
    """Fingerprints of the inputs a step's parameters name: every existing path parameter
    except ``run_dir`` (the run's own outputs count through the upstream keys)."""
    cache = {} if cache is None else cache
    fingerprints = {}
    for key, value in step_params.items():
        if key != "run_dir" and _is_path_parameter(key, value) and Path(value).exists():
            if value not in cache:
                cache[value] = path_fingerprint(Path(value))
            fingerprints[key] = cache[value]
    return fingerprints


def _why(record: dict, step_params: dict, environment: str, inputs: dict[str, str]) -> str:
    """Why a step with a last run does not match it, for the log."""
    if not record:
        return "no earlier run"
    reasons = [f"{key} changed" for key in sorted(set(inputs) | set(record.get("inputs", {})))
               if inputs.get(key) != record.get("inputs", {}).get(key)]
    if record.get("environment") != environment:
        reasons.append("medcoding source or library versions changed")
    if record.get("parameters") != json.loads(json.dumps(step_params, default=str)):
        reasons.append("parameters changed")
    return ", ".join(reasons) or "notebook or an upstream step changed"


# --- execution ----------------------------------------------------------------------------------


@contextlib.contextmanager
def track_peak_memory(interval_s: float = 0.2) -> Iterator[dict]:
    """Sample the resident memory of this process's children (the kernel) while the block runs.

    Yields a dict whose ``peak_mb`` holds the largest total RSS seen, in MiB.
    """
    import psutil

    me = psutil.Process()
    result = {"peak_mb": 0.0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            result["peak_mb"] = max(result["peak_mb"], total / 2**20)
            stop.wait(interval_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def quiet_kernel_env() -> Iterator[None]:
    """Set :data:`QUIET_KERNEL_ENV` for kernels started inside the block; restore afterwards."""
    saved = {key: os.environ.get(key) for key in QUIET_KERNEL_ENV}
    os.environ.update(QUIET_KERNEL_ENV)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute_step(step: Step, params: dict, output: Path, failed_copy: Path, cwd: Path) -> float:
    """Execute ``step`` with papermill into ``output`` atomically; return the kernel's peak MiB.

    On failure the partly executed notebook is copied to ``failed_copy`` and a PipelineError
    naming the cell, its source and the error is raised; ``output`` is left untouched.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    with (
        track_peak_memory() as memory,
        atomic_path(output) as tmp,
        quiet_kernel_env(),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", message=".*does not end in one of", category=UserWarning)
        try:
            papermill.execute_notebook(
                str(step.source),
                str(tmp),
                parameters=params,
                cwd=str(cwd),
                progress_bar=False,
                log_output=False,
                kernel_name="python3",
            )
        except PapermillExecutionError as err:
            failed_copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tmp, failed_copy)
            source = err.source if isinstance(err.source, str) else "".join(err.source)
            raise StepFailed(
                memory["peak_mb"],
                f"notebook {step.source} failed in cell {err.exec_count} "
                f"(index {err.cell_index}):\n{_indent(source)}\n{err.ename}: {err.evalue}\n"
                f"The partly executed notebook is {failed_copy}; the previous good output "
                f"(if any) is still {output}."
            ) from err
        remove_parameter_cells(tmp)
    return memory["peak_mb"]


def remove_parameter_cells(notebook_path: Path) -> None:
    """Tag the parameter cells of an executed notebook ``remove-cell``, so the book omits them."""
    import nbformat

    notebook = nbformat.read(notebook_path, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if set(tags) & set(PARAMETER_TAGS) and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(notebook, notebook_path)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def run_steps(
    steps: Sequence[Step],
    params: dict,
    run: runs.Run,
    *,
    force: bool = False,
    log=print,
    environment: str | None = None,
) -> list[StepResult]:
    """Execute ``steps`` into ``run.book_notebooks`` in order, skipping those whose key matches
    their last successful run (``run.step_record``).

    Stops at the first failing step; its result has status ``failed`` and the error message.
    ``environment`` defaults to :func:`environment_key` of what is installed.
    """
    environment = environment_key() if environment is None else environment
    results: list[StepResult] = []
    keys: dict[str, str] = {}
    fingerprints: dict[str, str] = {}
    for step in steps:
        step_params = parameters_for(step.source, params)
        inputs = input_fingerprints(step_params, fingerprints)
        key = step_key(step, step_params, keys, environment, inputs)
        keys[step.name] = key
        output = run.book_notebooks / step.source.name
        record_path = run.step_record(step.name)
        record = read_json(record_path) if record_path.is_file() else {}
        if not force and record.get("key") == key and output.is_file():
            log(f"[skip] {step.name}: inputs and parameters unchanged since its last run")
            results.append(
                StepResult(step.name, "skipped", key, record["seconds"], record["peak_mb"])
            )
            continue
        reason = "forced" if force else _why(record, step_params, environment, inputs)
        log(f"[run ] {step.name} ({reason}) with "
            f"{json.dumps(step_params, sort_keys=True, default=str)}")
        started = time.perf_counter()
        try:
            peak_mb = execute_step(
                step, step_params, output, run.failed_notebook(step.name),
                cwd=step.source.parent,
            )
        except StepFailed as err:
            seconds = time.perf_counter() - started
            results.append(StepResult(step.name, "failed", key, seconds, err.peak_mb, str(err)))
            log(f"[FAIL] {step.name}\n{err}")
            break
        seconds = time.perf_counter() - started
        from medcoding import precision as precisions  # torch: imported only once a step ran

        run.failed_notebook(step.name).unlink(missing_ok=True)
        write_json(
            record_path,
            {"key": key, "parameters": step_params, "seconds": round(seconds, 2),
             "peak_mb": round(peak_mb, 1), "depends_on": list(step.depends_on),
             "environment": environment, "inputs": inputs,
             "precision": precisions.resolve("auto", precisions.default_device()).to_dict()},
        )
        results.append(StepResult(step.name, "ran", key, seconds, peak_mb))
        log(f"[done] {step.name} in {seconds:.1f} s, kernel peak {peak_mb:.0f} MiB")
    return results


# --- the book -----------------------------------------------------------------------------------


def stage_book(root: Path, book_dir: Path, notebooks: Sequence[str], profile: str) -> None:
    """Copy the book's prose and config into ``book_dir`` with a toc of the present notebooks."""
    book_dir.mkdir(parents=True, exist_ok=True)
    for name in BOOK_FILES:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, book_dir / name, dirs_exist_ok=True)
        elif source.is_file():
            config = yaml.safe_load(source.read_text(encoding="utf-8"))
            config["title"] = f"{config.get('title', 'medcoding')} ({profile} profile)"
            write_text(book_dir / name, yaml.safe_dump(config, sort_keys=False))
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    pruned = _prune_toc(toc, set(notebooks))
    write_text(book_dir / "_toc.yml", yaml.safe_dump(pruned, sort_keys=False))


def _prune_toc(node: Any, keep_notebooks: set[str]) -> Any:
    """The toc without ``notebooks/...`` entries outside ``keep_notebooks`` (and empty parts)."""
    if isinstance(node, list):
        pruned = [_prune_toc(child, keep_notebooks) for child in node]
        return [child for child in pruned if child is not None]
    if isinstance(node, dict):
        entry = node.get("file", "")
        if entry.startswith("notebooks/") and entry not in keep_notebooks:
            return None
        pruned = {key: _prune_toc(value, keep_notebooks) for key, value in node.items()}
        if "caption" in pruned and not pruned.get("chapters"):
            return None
        return pruned
    return node


def build_book(book_dir: Path) -> int:
    """``jupyter-book build BOOK_DIR --all -W -n --keep-going``; returns its exit status.

    ``--all`` rebuilds every page: an incremental build re-renders only the changed notebooks
    and would keep a page's stale copy of a value glued in from another chapter (a few seconds).
    """
    command = [
        str(Path(sys.executable).with_name("jupyter-book")), "build", str(book_dir),
        "--all", "-W", "-n", "--keep-going",
    ]
    return subprocess.run(command, check=False).returncode


def validate_notebooks(notebooks: Sequence[Path], root: Path) -> int:
    """Re-execute executed notebooks with nbval; 0 when every output reproduces."""
    if not notebooks:
        raise PipelineError("no executed notebooks to validate: run the profile first")
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
        "--nbval-current-env", "--nbval-sanitize-with", str(root / NBVAL_SANITIZE),
        "--rootdir", str(root), *map(str, notebooks),
    ]
    env = {**os.environ, **QUIET_KERNEL_ENV}
    return subprocess.run(command, check=False, cwd=root, env=env).returncode


# --- the whole run ------------------------------------------------------------------------------


def run_profile(
    profile: str,
    overrides: dict[str, Any] | None = None,
    *,
    root: Path | None = None,
    run_dir: Path | None = None,
    build: bool = True,
    force: bool = False,
    log=print,
) -> RunReport:
    """Execute the profile's notebooks into ``<run_dir>/book`` and build the book there."""
    root = (root or Path.cwd()).resolve()
    steps, missing = discover_steps(root)
    params = profile_parameters(profile, overrides, root, steps, run_dir)
    run = runs.Run(params["run_dir"])
    for entry in missing:
        log(f"[warn] {entry}.ipynb is listed in _toc.yml but does not exist yet: skipped")
    stage_book(root, run.book, [f"notebooks/{step.name}" for step in steps], profile)
    report = RunReport(run=run)
    report.steps = run_steps(steps, params, run, force=force, log=log)
    report.steps += [StepResult(Path(entry).name, "missing") for entry in missing]
    if build and report.ok:
        started = time.perf_counter()
        with track_peak_memory() as memory:
            report.book_returncode = build_book(run.book)
        report.book_seconds = time.perf_counter() - started
        report.book_peak_mb = memory["peak_mb"]
    return report


def profile_parameters(profile: str, overrides: dict[str, Any] | None, root: Path,
                       steps: Sequence[Step], run_dir: Path | None = None) -> dict:
    """The profile's parameters with ``overrides`` and ``run_dir`` applied, paths resolved."""
    declared = [name for step in steps for name in declared_parameters(step.source)]
    params = load_profile(profile, root / "params", overrides, declared)
    check_profile_keys(params, declared, profile, root / "params")
    params.setdefault("run_dir", f"runs/{profile}")
    if run_dir is not None:
        params["run_dir"] = str(run_dir)
    return resolve_paths(params, root)


def stale_steps(steps: Sequence[Step], params: dict) -> list[str]:
    """Steps whose last successful run (``<run_dir>/steps/NAME.json``) is not for ``params`` and
    the installed environment, or that never ran."""
    keys = plan_keys(steps, params, environment_key())
    run = runs.Run(params["run_dir"])
    stale = []
    for step in steps:
        record_path = run.step_record(step.name)
        if not record_path.is_file() or read_json(record_path).get("key") != keys[step.name]:
            stale.append(step.name)
    return stale


def _resolve(root: Path, path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else root / candidate


def summary_table(report: RunReport) -> str:
    """The per-step wall time and kernel peak memory, as printed at the end of a run."""
    lines = [f"{'step':<24}{'status':<9}{'seconds':>9}{'peak MiB':>10}"]
    for step in report.steps:
        lines.append(f"{step.name:<24}{step.status:<9}{step.seconds:>9.1f}{step.peak_mb:>10.0f}")
    ran = sum(step.seconds for step in report.steps if step.status == "ran")
    peak = max((step.peak_mb for step in report.steps), default=0.0)
    lines.append(f"{'notebooks (this run)':<33}{ran:>9.1f}{peak:>10.0f}")
    if report.book_returncode is not None:
        lines.append(f"{'jupyter-book build':<33}{report.book_seconds:>9.1f}"
                     f"{report.book_peak_mb:>10.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="medcoding run",
        description="Run a profile's notebooks with papermill and build the Jupyter Book.",
    )
    parser.add_argument("--profile", default="default", help="params/NAME.yaml (default: default)")
    parser.add_argument(
        "-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
        help="override a profile parameter; VALUE is parsed as YAML",
    )
    parser.add_argument("--run-dir", type=Path, help="override the profile's run_dir")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="project root")
    parser.add_argument("--validate-only", action="store_true",
                        help="re-execute the executed notebooks with nbval and compare outputs")
    parser.add_argument("--no-build", action="store_true", help="execute notebooks only")
    parser.add_argument("--force", action="store_true", help="re-execute every notebook")
    args = parser.parse_args(argv)
    overrides = {key: parse_value(value) for key, value in args.parameter}
    root = args.root.resolve()
    try:
        if args.validate_only:
            steps, _ = discover_steps(root)
            params = profile_parameters(args.profile, overrides, root, steps, args.run_dir)
            run = runs.Run(params["run_dir"])
            executed = run.executed_notebooks()
            stale = stale_steps(steps, params) if executed else []
            if stale:
                given = "".join(f" -p {key} {value}" for key, value in args.parameter)
                raise PipelineError(
                    f"the executed notebooks in {run.book_notebooks} are not current for profile "
                    f"{args.profile!r} with these parameters: steps {stale} last ran with other "
                    "parameters, inputs, medcoding source or library versions, or never ran; "
                    f"run `medcoding run --profile {args.profile}{given}` first")
            return validate_notebooks(executed, root)
        report = run_profile(
            args.profile, overrides, root=root, run_dir=args.run_dir,
            build=not args.no_build, force=args.force,
        )
    except PipelineError as err:
        print(f"medcoding run: {err}", file=sys.stderr)
        return 2
    print(summary_table(report))
    if report.book_returncode == 0:
        print(f"book: {report.run.book_html / 'index.html'}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""The book pipeline on tiny throwaway notebooks: profiles, parameter routing, skipping, failure."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from medcoding import figures, pipeline, study

ROOT = Path(__file__).resolve().parents[1]


def write_notebook(path: Path, parameters: str, body: str, depends_on=None) -> None:
    cells = [new_markdown_cell(f"# {path.stem}"), new_code_cell(parameters), new_code_cell(body)]
    cells[1].metadata["tags"] = ["parameters"]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    if depends_on is not None:
        notebook.metadata["medcoding"] = {"depends_on": depends_on}
    nbformat.write(notebook, path)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with three notebooks: a writes a number, b reads it, c only uses its own."""
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "params").mkdir()
    (root / "book").mkdir()
    (root / "book" / "intro.md").write_text("# Intro\n")
    (root / "_config.yml").write_text("title: test\n")
    toc = {"format": "jb-book", "root": "book/intro", "chapters": [
        {"file": "notebooks/a"}, {"file": "notebooks/b"}, {"file": "notebooks/c"},
        {"file": "notebooks/d_not_written_yet"}]}
    (root / "_toc.yml").write_text(yaml.safe_dump(toc))
    (root / "params" / "base.yaml").write_text(
        "run_dir: runs/base\nvalue: 2\nfactor: 10\nlabel: x\n")
    (root / "params" / "child.yaml").write_text("extends: base\nrun_dir: runs/child\nfactor: 3\n")
    write_notebook(
        root / "notebooks" / "a.ipynb", "run_dir = '.'\nvalue = 1",
        "from pathlib import Path\nPath(run_dir).mkdir(parents=True, exist_ok=True)\n"
        "(Path(run_dir) / 'a.txt').write_text(str(value))\nprint('a wrote', value)",
        depends_on=[],
    )
    write_notebook(
        root / "notebooks" / "b.ipynb", "run_dir = '.'\nfactor = 1",
        "from pathlib import Path\n"
        "result = int((Path(run_dir) / 'a.txt').read_text()) * factor\nprint('b', result)",
        depends_on=["a"],
    )
    write_notebook(root / "notebooks" / "c.ipynb", "label = 'c'", "print('c', label)",
                   depends_on=[])
    return root


def run(project: Path, overrides=None, profile: str = "base"):
    messages: list[str] = []
    report = pipeline.run_profile(profile, overrides, root=project, build=False,
                                  log=messages.append)
    return report, messages


def statuses(report) -> dict[str, str]:
    return {step.name: step.status for step in report.steps}


def executed_output(project: Path, name: str, profile: str = "base") -> str:
    notebook = nbformat.read(project / "runs" / profile / "book" / "notebooks" / f"{name}.ipynb",
                             as_version=4)
    outputs = [out for cell in notebook.cells for out in cell.get("outputs", [])]
    return "".join(out.get("text", "") for out in outputs)


def test_profile_extends_and_overrides(project: Path) -> None:
    params = pipeline.load_profile("child", project / "params", {"value": 7})
    assert params == {"run_dir": "runs/child", "value": 7, "factor": 3, "label": "x"}
    with pytest.raises(pipeline.PipelineError, match=r"unknown parameter\(s\) \['valeu'\]"):
        pipeline.load_profile("base", project / "params", {"valeu": 7})
    assert pipeline.load_profile("base", project / "params", {"extra": 1}, declared=["extra"])[
        "extra"] == 1
    with pytest.raises(pipeline.PipelineError, match="no profile 'nope'.*available: \\['base'"):
        pipeline.load_profile("nope", project / "params")


def test_profile_key_no_notebook_declares_is_refused(project: Path) -> None:
    (project / "params" / "typo.yaml").write_text("extends: base\nrun_dir: runs/typo\nfactr: 3\n")
    with pytest.raises(pipeline.PipelineError, match=r"typo.yaml: key\(s\) \['factr'\]"):
        run(project, profile="typo")
    assert not (project / "runs" / "typo").exists()


def test_every_key_of_the_shipped_profiles_is_a_notebook_parameter() -> None:
    steps, _ = pipeline.discover_steps(ROOT)
    declared = [name for step in steps for name in pipeline.declared_parameters(step.source)]
    for profile in ("smoke", "default", "paper", "mimic"):
        params = pipeline.load_profile(profile, ROOT / "params")
        pipeline.check_profile_keys(params, declared, profile, ROOT / "params")


def test_every_notebook_parameter_has_a_type_and_range() -> None:
    steps, _ = pipeline.discover_steps(ROOT)
    declared = {name for step in steps for name in pipeline.declared_parameters(step.source)}
    assert declared == set(pipeline.configs.schema(pipeline.Profile))


def test_profile_values_are_checked_for_type_and_range(project: Path) -> None:
    (project / "params" / "bad.yaml").write_text("extends: base\nepochs: 0\n")
    with pytest.raises(pipeline.PipelineError,
                       match=r"bad.yaml: epochs = 0: input should be greater than or equal to 1; "
                             r"fix: change epochs \(its type is int \(ge=1\)"):
        pipeline.load_profile("bad", project / "params")
    (project / "params" / "bad.yaml").write_text("extends: base\nlearning_rate: 1e-4\n")
    with pytest.raises(pipeline.PipelineError, match="bad.yaml: learning_rate = '1e-4'"):
        pipeline.load_profile("bad", project / "params")  # YAML 1.1 reads 1e-4 as a string
    (project / "params" / "bad.yaml").write_text(
        "extends: base\nsynthetic_overrides:\n  self_harm_rate: {toxicology: 2}\n")
    with pytest.raises(pipeline.PipelineError, match=r"bad.yaml: synthetic_overrides: "
                                                     r"self_harm_rate\['toxicology'\] = 2"):
        pipeline.load_profile("bad", project / "params")
    with pytest.raises(pipeline.PipelineError, match=r"-p override: ladder_sizes = \[\]"):
        pipeline.load_profile("base", project / "params", {"ladder_sizes": []},
                              declared=["ladder_sizes"])
    assert pipeline.load_profile("base", project / "params", {"value": "anything"})["value"] == (
        "anything")  # a parameter Profile does not list is the notebook's business


def test_override_values_are_yaml() -> None:
    assert pipeline.parse_value("2000") == 2000
    assert pipeline.parse_value("0.05") == 0.05
    assert pipeline.parse_value('["F32-F33"]') == ["F32-F33"]
    assert pipeline.parse_value("null") is None
    assert pipeline.parse_value("minilm") == "minilm"


def test_path_parameters_resolve_against_the_root(tmp_path: Path) -> None:
    resolved = pipeline.resolve_paths(
        {"run_dir": "runs/x", "cohort_dir": None, "encoder": "models/bert", "label": "a/b",
         "seed": 1}, tmp_path)
    assert resolved["run_dir"] == str(tmp_path / "runs/x")
    assert resolved["encoder"] == str(tmp_path / "models/bert")
    assert resolved["cohort_dir"] is None and resolved["label"] == "a/b"
    assert pipeline.resolve_paths({"encoder": "minilm"}, tmp_path)["encoder"] == "minilm"


def test_each_notebook_gets_only_its_parameters(project: Path) -> None:
    params = {"run_dir": "/r", "value": 5, "factor": 2, "label": "z", "unused": 0}
    assert pipeline.parameters_for(project / "notebooks" / "a.ipynb", params) == {
        "run_dir": "/r", "value": 5}
    assert pipeline.parameters_for(project / "notebooks" / "c.ipynb", params) == {"label": "z"}


def test_run_skips_unchanged_steps_and_reruns_dependents(project: Path) -> None:
    report, messages = run(project)
    assert statuses(report) == {"a": "ran", "b": "ran", "c": "ran", "d_not_written_yet": "missing"}
    assert any("d_not_written_yet.ipynb is listed in _toc.yml but does not exist" in m
               for m in messages)
    assert "b 20" in executed_output(project, "b")
    executed = nbformat.read(project / "runs" / "base" / "book" / "notebooks" / "a.ipynb",
                             as_version=4)
    tagged = [cell.metadata.get("tags", []) for cell in executed.cells]
    assert ["injected-parameters", "remove-cell"] in tagged  # papermill's cell, left off the page
    assert ["parameters", "remove-cell"] in tagged
    staged_toc = (project / "runs" / "base" / "book" / "_toc.yml").read_text()
    assert "notebooks/c" in staged_toc and "d_not_written_yet" not in staged_toc
    record = json.loads((project / "runs" / "base" / "steps" / "b.json").read_text())
    assert record["parameters"] == {"run_dir": str(project / "runs" / "base"), "factor": 10}
    assert record["seconds"] > 0 and record["peak_mb"] > 10  # the kernel's memory was sampled
    assert record["precision"]["precision"] in ("bf16", "fp32")  # what `auto` resolved to here

    report, _ = run(project)
    assert statuses(report) == {"a": "skipped", "b": "skipped", "c": "skipped",
                                "d_not_written_yet": "missing"}

    report, _ = run(project, {"factor": 4})  # only b declares factor
    assert statuses(report)["a"] == "skipped" and statuses(report)["c"] == "skipped"
    assert statuses(report)["b"] == "ran" and "b 8" in executed_output(project, "b")

    report, _ = run(project, {"value": 3, "factor": 4})  # a changes, so b (depends on a) reruns
    assert statuses(report) == {"a": "ran", "b": "ran", "c": "skipped",
                                "d_not_written_yet": "missing"}
    assert "b 12" in executed_output(project, "b")


def test_editing_a_notebook_reruns_it(project: Path) -> None:
    run(project)
    source = project / "notebooks" / "c.ipynb"
    notebook = nbformat.read(source, as_version=4)
    notebook.cells[2].source = "print('c changed', label)"
    nbformat.write(notebook, source)
    report, _ = run(project)
    assert statuses(report)["c"] == "ran" and statuses(report)["a"] == "skipped"
    assert "c changed x" in executed_output(project, "c")


def test_failure_stops_the_run_and_keeps_the_good_output(project: Path) -> None:
    run(project)
    good = (project / "runs" / "base" / "book" / "notebooks" / "b.ipynb").read_bytes()
    report, messages = run(project, {"factor": None})  # int * None raises a TypeError
    assert statuses(report) == {"a": "skipped", "b": "failed", "d_not_written_yet": "missing"}
    failure = report.steps[1].message
    assert "TypeError" in failure and "* factor" in failure and "cell" in failure
    assert (project / "runs" / "base" / "book" / "notebooks" / "b.ipynb").read_bytes() == good
    assert (project / "runs" / "base" / "steps" / "b.failed.ipynb").is_file()
    assert not report.ok
    assert "c" not in statuses(report)  # the run stopped at the failure

    report, _ = run(project)  # the original parameters: b's last good run still counts
    assert statuses(report)["b"] == "skipped"


def test_main_reports_errors_and_summary(project: Path, capsys) -> None:
    assert pipeline.main(["--profile", "base", "--root", str(project), "--no-build",
                          "-p", "nonsense", "1"]) == 2
    assert "unknown parameter(s) ['nonsense']" in capsys.readouterr().err
    assert pipeline.main(["--profile", "base", "--root", str(project), "--no-build"]) == 0
    out = capsys.readouterr().out
    assert "peak MiB" in out and "a " in out


def test_repository_toc_lists_every_chapter_and_profiles_load() -> None:
    entries = pipeline.notebook_entries(ROOT / "_toc.yml")
    assert entries == [f"notebooks/{name}" for name in (
        "01_cohort", "02_training", "03_results", "04_scaling", "05_specialties",
        "06_code_frequency", "07_primary_secondary", "08_undercoding", "09_documentation",
        "10_thresholds", "11_explanations")]
    for entry in pipeline.toc_files(ROOT / "_toc.yml"):
        if entry.startswith("book/"):
            assert (ROOT / f"{entry}.md").is_file(), entry
    for profile in ("smoke", "default", "paper", "mimic"):
        params = pipeline.load_profile(profile, ROOT / "params")
        assert params["run_dir"] == f"runs/{profile}"


def test_every_chapter_cell_is_tagged_for_the_report() -> None:
    """Parameters cells are removed from the page, every other code cell's code is collapsed."""
    untagged = []
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for index, cell in enumerate(nbformat.read(notebook, as_version=4).cells):
            tags = set(cell.metadata.get("tags", []))
            if cell.cell_type != "code":
                continue
            wanted = {"remove-cell"} if "parameters" in tags else {
                "hide-input", "hide-cell", "remove-input", "remove-cell"}
            if not tags & wanted:
                untagged.append(f"{notebook.name} cell {index}: tags {sorted(tags)}")
    assert not untagged, "tag these cells (CONTRIBUTING.md, Writing a chapter):\n" + "\n".join(
        untagged)


def test_notebook_defaults_are_the_smoke_profile() -> None:
    """A notebook opened in JupyterLab runs as the smoke profile does under papermill."""
    import papermill

    smoke = pipeline.load_profile("smoke", ROOT / "params")
    for notebook in sorted((ROOT / "notebooks").glob("0[1-4]_*.ipynb")):
        declared = papermill.inspect_notebook(str(notebook))
        for name, info in declared.items():
            default = eval(info["default"])  # noqa: S307 - the repository's own notebooks
            expected = "../runs/smoke" if name == "run_dir" else smoke[name]
            assert default == expected, f"{notebook.name}: {name} = {default!r}, smoke {expected!r}"


def test_figures_draw_from_dataframes_and_save(tmp_path: Path) -> None:
    figures.apply_style()
    frame = pd.DataFrame({"name": ["a", "b", "c", "d"], "value": [0.2, 0.9, 0.5, 0.7],
                          "size": [10, 100, 1000, 10000], "group": ["x", "x", "y", "y"],
                          "low": [0.1, 0.8, 0.4, 0.6], "high": [0.3, 1.0, 0.6, 0.8]})
    dots = figures.dot_plot(frame, x="value", y="name")
    labels = [label.get_text() for label in dots.axes[0].get_yticklabels()]
    assert labels == ["b", "d", "c", "a"]  # sorted, largest first
    assert figures.scatter(frame, "size", "value", logx=True).axes[0].get_xscale() == "log"
    assert len(figures.line_plot(frame, "size", "value", hue="group").axes[0].lines) >= 2
    bars = figures.bar_plot(frame, x="name", y="value", hue="group", low="low", high="high")
    heights = sorted(round(patch.get_height(), 3) for patch in bars.axes[0].patches)
    assert heights == [0.2, 0.5, 0.7, 0.9]
    with pytest.raises(KeyError, match=r"column\(s\) \['missing'\]"):
        figures.scatter(frame, "size", "missing")
    flow = pd.DataFrame({"step": [1, 2], "name": ["no codes", "too long"], "enabled": [True, True],
                         "courses_before": [100, 90], "courses_removed": [10, 5],
                         "courses_after": [90, 85], "patients_before": [50, 48],
                         "patients_removed": [2, 1], "patients_after": [48, 47]})
    chart = figures.flow_chart(flow)
    texts = " ".join(text.get_text() for text in chart.axes[0].texts)
    assert "100 courses" in texts and "−10 courses" in texts and "85 courses" in texts
    path = figures.save(chart, tmp_path, "flow")
    assert path == tmp_path / "figures" / "flow.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shown = figures.table(frame[["name", "value"]].assign(value=[0.12345] * 4), tmp_path, "t")
    assert shown["value"].tolist() == [0.123] * 4
    assert pd.read_csv(tmp_path / "tables" / "t.csv")["value"].tolist() == [0.12345] * 4


def test_study_numbers() -> None:
    table = study.table1_wide()
    assert table.loc["F1 micro", "1.8M"] == 0.718 and table.loc["F1 macro", "50K"] == 0.256
    assert table.loc["Recall@10", "1M (level 5)"] == 0.860
    assert table.shape == (8, 7)
    assert study.headline("3")["map"] == 0.828
    assert study.undercoding("X60-X85")["extra_model_cases"] == 917
    assert study.undercoding("I10-I15")["detected_at_lowered"] == 0.860
    assert study.DIABETES["model_agreed"] == 314
    assert study.HEART_FAILURE["low_confidence_cases"] == 1312
    # every level-3 metric rises monotonically with training size in the study
    long = study.table1()
    level3 = long[long["level"] == "3"].sort_values("train_patients")
    assert (level3.groupby("metric")["value"].diff().dropna() > 0).all()


def with_cohort_step(project: Path) -> Path:
    """Notebook a reads cohort_dir (an input folder outside the run), b depends on a, c not."""
    cohort = project / "cohort"
    cohort.mkdir()
    (cohort / "courses.csv").write_text("course_id\nC1\n")
    write_notebook(
        project / "notebooks" / "a.ipynb", "run_dir = '.'\nvalue = 1\ncohort_dir = None",
        "from pathlib import Path\nPath(run_dir).mkdir(parents=True, exist_ok=True)\n"
        "rows = len(Path(cohort_dir, 'courses.csv').read_text().splitlines()) - 1\n"
        "(Path(run_dir) / 'a.txt').write_text(str(value * rows))\nprint('a rows', rows)",
        depends_on=[],
    )
    params = project / "params" / "base.yaml"
    params.write_text(params.read_text() + "cohort_dir: cohort\n")
    return cohort


def keys_for(project: Path, environment: str = "env", overrides=None) -> dict[str, str]:
    steps, _ = pipeline.discover_steps(project)
    declared = [name for step in steps for name in pipeline.declared_parameters(step.source)]
    params = pipeline.load_profile("base", project / "params", overrides, declared)
    return pipeline.plan_keys(steps, pipeline.resolve_paths(params, project), environment)


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def test_each_kind_of_change_invalidates_exactly_its_steps(project: Path) -> None:
    cohort = with_cohort_step(project)
    base = keys_for(project)
    assert keys_for(project) == base  # nothing changed: every step is reused
    assert changed(base, keys_for(project, environment="other")) == {"a", "b", "c"}
    assert changed(base, keys_for(project, overrides={"factor": 4})) == {"b"}
    assert changed(base, keys_for(project, overrides={"label": "y"})) == {"c"}
    (cohort / "courses.csv").write_text("course_id\nC1\nC2\n")  # re-extracted, same folder
    assert changed(base, keys_for(project)) == {"a", "b"}
    (cohort / ".courses.csv.123.tmp").write_text("half written")  # temporary files do not count
    assert not changed(keys_for(project), dict(keys_for(project)))


def test_environment_key_follows_source_libraries_and_precision(tmp_path) -> None:
    import shutil

    import medcoding

    package = tmp_path / "medcoding"
    shutil.copytree(Path(medcoding.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    versions = pipeline.library_versions()
    assert versions["torch"].startswith("2.13.0") and "papermill" in versions
    assert "transformers" in versions and "python" in versions
    key = pipeline.environment_key(package, versions)
    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "metrics.cpython-311.pyc").write_bytes(b"cache")
    assert pipeline.environment_key(package, versions) == key  # caches do not count
    metrics = package / "metrics.py"
    metrics.write_text(metrics.read_text() + "\n# an edit\n")
    edited = pipeline.environment_key(package, versions)
    assert edited != key
    assert pipeline.environment_key(package, {**versions, "numpy": "0.0.1"}) != edited
    here = pipeline.machine_precision()
    assert here in ("bf16", "fp32")
    assert pipeline.environment_key(package, versions, here) == edited
    other = {"bf16": "fp32", "fp32": "bf16"}[here]
    assert pipeline.environment_key(package, versions, other) != edited  # another machine
    assert pipeline.environment_key() == pipeline.environment_key()  # the installed package


def test_a_re_extracted_cohort_reruns_its_steps(project: Path) -> None:
    cohort = with_cohort_step(project)
    report, _ = run(project)
    assert statuses(report) == {"a": "ran", "b": "ran", "c": "ran", "d_not_written_yet": "missing"}
    assert "b 20" in executed_output(project, "b")  # value 2 x 1 row x factor 10
    (cohort / "courses.csv").write_text("course_id\nC1\nC2\nC3\n")
    report, messages = run(project)
    assert statuses(report) == {"a": "ran", "b": "ran", "c": "skipped",
                                "d_not_written_yet": "missing"}
    assert "b 60" in executed_output(project, "b")
    assert any("[run ] a" in m and "cohort_dir changed" in m for m in messages), messages


def test_validate_only_honours_overrides(project: Path, capsys) -> None:
    (project / pipeline.NBVAL_SANITIZE).write_text((ROOT / pipeline.NBVAL_SANITIZE).read_text())
    other = project / "runs" / "elsewhere"
    report, _ = run(project, {"run_dir": str(other)})
    assert report.ok
    assert pipeline.main(["--profile", "base", "--root", str(project), "--validate-only",
                          "-p", "run_dir", str(other)]) == 0
    capsys.readouterr()
    assert pipeline.main(["--profile", "base", "--root", str(project), "--validate-only",
                          "-p", "run_dir", str(other), "-p", "factor", "4"]) == 2
    err = capsys.readouterr().err
    assert "not current" in err and "steps ['b']" in err  # only b declares factor
    assert "medcoding run --profile base -p run_dir" in err and "-p factor 4` first" in err

"""Preprocessing: filter a cohort, build one text per course, split by patient.

``medcoding prepare --data DIR --out DIR [--config FILE]`` (or :func:`prepare`) reads a cohort
in the data contract and writes the prepared splits described in CONTRIBUTING.md.

Filters (the study's Methods, "Data preprocessing", and Figure 4), in this order; each one is a
:class:`PrepareConfig` field and can be switched off:

1. ``no_codes``: courses without any human code (no supervision signal).
2. ``no_discharge_summary``: courses without a note whose type is in ``discharge_note_types``.
3. ``only_z_codes``: courses whose codes all lie in chapter XXI (Z00-Z99; administrative
   encounters such as vaccinations).
4. ``invalid_codes``: courses holding a code that is not defined in the cohort's code system
   (``manifest.json`` ``code_system``; text that is no ICD-10 code at all counts as undefined).
   The whole course goes, as in the study ("cases with categories not defined ... were removed").
5. ``rare_categories``: courses holding a level-3 category that occurs in fewer than
   ``min_category_count`` courses. Occurrences are counted once per course, over the courses
   left after step 4 (all splits together, as the study counts "across the entire dataset"), in
   a single pass: categories that fall below the threshold *because* of this removal stay.
6. ``long_text``: courses whose concatenated text (below: notes, medications and labs) is
   longer than ``max_text_chars`` characters.
7. ``specialties``: courses of the specialties in ``drop_specialties`` (default
   ``adult_psychiatry``; ``child_and_adolescent_psychiatry`` stays).

``flow.csv`` has one row per step: ``step, name, enabled, courses_before, courses_removed,
courses_after, patients_before, patients_removed, patients_after`` (a patient is removed when
the step removes their last course).

Text format (one string per course)
    Sections are joined by one blank line (``"\\n\\n"``):

    - the notes, each note's text unchanged, ordered by ``note_type`` as in ``note_type_order``
      (default ``discharge_summary``, ``admission_note``, ``progress_note``), other types after
      them alphabetically, notes of the same type in table order;
    - ``"Medications:"`` and one line ``"- {drug}"`` per medication row, in table order
      (omitted when the course has none);
    - ``"Lab results:"`` and one line ``"- {test}: {value} {unit}"`` per lab row (``" {unit}"``
      omitted when missing), in table order (omitted when none).

Codes
    Codes are normalised to the dotted form (``DE660`` -> ``E66.0``) and deduplicated per course.
    ``codes_full`` lists the primary code first, then the others sorted; ``codes_l3`` their
    categories in the same order without repeats. The truth columns (synthetic cohorts) follow
    the same rule: ``true_full`` with ``true_evidence`` aligned to it, ``true_l3``, and the
    string ``true_primary_full``. When the cohort has ``distractors``: ``distractor_l3`` and the
    aligned ``distractor_kind``.

Split
    Patients (sorted by id, then shuffled with ``seed``) go to test, then validation, then
    training; ``val_size`` / ``test_size`` below 1 are fractions of the patients, 1 or more are
    patient counts. ``patient_rank`` is each patient's position in that shuffled order within
    their split, so the training subset of N patients (``patient_rank < N``) lies inside every
    larger one. ``labels.json`` holds the sorted codes seen in training: ``{"l3": [...],
    "full": [...]}``.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from medcoding import __version__, icd10
from medcoding.cohort import contract
from medcoding.io import atomic_path, write_csv, write_json

DEFAULTS_FILE = Path(__file__).with_name("preprocess_defaults.yaml")
SPLITS = ("train", "val", "test")
SECTION_SEPARATOR = "\n\n"
FLOW_COLUMNS = ["step", "name", "enabled", "courses_before", "courses_removed", "courses_after",
                "patients_before", "patients_removed", "patients_after"]


@dataclass(frozen=True)
class PrepareConfig:
    """Every choice of :func:`prepare`; the defaults follow the study (see the module doc)."""

    drop_no_codes: bool = True
    drop_no_discharge_summary: bool = True
    discharge_note_types: tuple[str, ...] = ("discharge_summary",)
    drop_only_z_codes: bool = True
    drop_invalid_codes: bool = True
    min_category_count: int = 10
    max_text_chars: int | None = 10_000
    drop_specialties: tuple[str, ...] = ("adult_psychiatry",)
    note_type_order: tuple[str, ...] = ("discharge_summary", "admission_note", "progress_note")
    val_size: float = 0.1
    test_size: float = 0.2
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> PrepareConfig:
        """Build a config from a mapping; unknown keys raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"{source}: unknown keys {unknown}; fix: use only {sorted(names)}")
        lists = {f.name for f in dataclasses.fields(cls) if isinstance(f.default, tuple)}
        cleaned = {key: (value,) if key in lists and isinstance(value, str) else value
                   for key, value in values.items()}
        cleaned = {key: tuple(value) if isinstance(value, list) else value
                   for key, value in cleaned.items()}
        return cls(**cleaned)

    @classmethod
    def from_yaml(cls, path: str | Path) -> PrepareConfig:
        """Read a YAML file of config keys (see ``preprocess_defaults.yaml``)."""
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of config keys; fix: write 'key: value'")
        return cls.from_dict(values, str(path))

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}


@dataclass
class PrepareResult:
    """What :func:`prepare` wrote: the output folder, the flow table and the split sizes."""

    out_dir: Path
    flow: pd.DataFrame
    counts: dict = field(default_factory=dict)


# Codes


def normalise_codes(codes: pd.DataFrame, system: str) -> pd.DataFrame:
    """Contract ``codes``/``truth`` rows with ``full``, ``l3`` and ``valid`` columns added.

    ``full`` is the dotted code (the stripped upper-case text where it is no ICD-10 code),
    ``l3`` its first three characters, ``valid`` whether the code exists in ``system``.
    """
    raw = codes["code"].astype(str).str.strip().str.upper()
    full = icd10.normalise_series(raw, system, errors="coerce").fillna(raw).astype(str)
    return codes.assign(full=full, l3=full.str[:3], valid=icd10.valid_mask(raw, system))


LIST_TYPE = pa.list_(pa.string())


def _lists_by_course(course_ids: pd.Series, values: pd.Series) -> pd.Series:
    """Arrow lists of ``values`` per course; rows must be grouped by course (index: course_id)."""
    ids = course_ids.to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, int)
    offsets = pa.array(np.r_[starts, len(ids)].astype(np.int32))
    items = pa.array(values.astype("str"), type=pa.string())
    if isinstance(items, pa.ChunkedArray):
        items = items.combine_chunks()
    lists = pa.ListArray.from_arrays(offsets, items)
    return pd.Series(pd.arrays.ArrowExtensionArray(lists), index=ids[starts])


def _ordered_unique(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (course, full code): primary first, then codes sorted."""
    ordered = frame.assign(secondary=~frame["is_primary"].astype(bool)).sort_values(
        ["course_id", "secondary", "full"], kind="stable")
    return ordered.drop_duplicates(["course_id", "full"])


def code_lists(frame: pd.DataFrame, prefix: str, with_evidence: bool = False) -> pd.DataFrame:
    """Per course (index): ``{prefix}_full``, ``{prefix}_l3`` lists and the primary code(s).

    ``prefix="codes"`` gives ``codes_full, codes_l3, primary_l3, primary_full``;
    ``prefix="true"`` gives ``true_full, true_evidence`` (if asked), ``true_l3`` and
    ``true_primary_full``. ``frame`` is :func:`normalise_codes` output.
    """
    unique = _ordered_unique(frame)
    lists = pd.DataFrame({f"{prefix}_full": _lists_by_course(unique["course_id"], unique["full"])})
    if with_evidence:
        lists[f"{prefix}_evidence"] = _lists_by_course(unique["course_id"], unique["evidence"])
    categories = unique.drop_duplicates(["course_id", "l3"])
    lists[f"{prefix}_l3"] = _lists_by_course(categories["course_id"], categories["l3"])
    primary = unique[unique["is_primary"].astype(bool)].drop_duplicates("course_id")
    primary = primary.set_index("course_id")
    if prefix == "codes":
        lists["primary_l3"] = primary["l3"]
        lists["primary_full"] = primary["full"]
    else:
        lists[f"{prefix}_primary_full"] = primary["full"]
    return lists


def distractor_lists(distractors: pd.DataFrame, system: str) -> pd.DataFrame:
    """Per course: ``distractor_l3`` and aligned ``distractor_kind`` lists (sorted pairs)."""
    raw = distractors["code"].astype(str).str.strip().str.upper()
    l3 = icd10.categories_of(raw, system).fillna(raw.str[:3]).astype(str)
    pairs = distractors.assign(l3=l3).sort_values(["course_id", "l3", "kind"], kind="stable")
    pairs = pairs.drop_duplicates(["course_id", "l3", "kind"])
    return pd.DataFrame({"distractor_l3": _lists_by_course(pairs["course_id"], pairs["l3"]),
                         "distractor_kind": _lists_by_course(pairs["course_id"], pairs["kind"])})


def _filled_lists(lists: pd.Series) -> pd.Series:
    """Missing lists (courses without codes) become empty lists."""
    array = pa.array(lists.array)
    filled = pc.if_else(pc.is_null(array), pa.scalar([], LIST_TYPE), array)
    return pd.Series(pd.arrays.ArrowExtensionArray(filled), index=lists.index)


def _vocabulary(lists: pd.Series) -> list[str]:
    """Sorted distinct codes in a Series of code lists."""
    if lists.empty:
        return []
    return sorted(pc.unique(pc.list_flatten(pa.array(lists.array))).to_pylist())


# Text


def _to_str_series(array: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """A pandas ``str`` Series over Arrow strings (no copy)."""
    dtype = pd.StringDtype("pyarrow", na_value=np.nan)
    return pd.Series(pd.arrays.ArrowStringArray(array, dtype=dtype), index=index, name="text")


def _arrow_text(values: pd.Series) -> pa.ChunkedArray:
    """The text column as Arrow ``large_string`` (no copy for pandas ``str`` columns)."""
    array = pa.array(values.array)
    if not isinstance(array, pa.ChunkedArray):
        array = pa.chunked_array([array], array.type)
    return array.cast(pa.large_string()) if array.type != pa.large_string() else array


@dataclass
class _Pieces:
    """Text pieces to join per course: ``group`` is the course position, ``order`` the rank."""

    group: np.ndarray
    order: np.ndarray
    text: pa.ChunkedArray


def _take_rows(chunks: list[pa.Array], rows: np.ndarray) -> pa.Array:
    """``rows`` (positions in the chunks laid end to end) taken from ``chunks``, in order.

    Takes from each chunk separately: Arrow's take on a chunked string array would first
    concatenate the whole column on every call.
    """
    chunk_starts = np.cumsum([0] + [len(chunk) for chunk in chunks])
    chunk_of = np.searchsorted(chunk_starts, rows, side="right") - 1
    by_chunk = np.argsort(chunk_of, kind="stable")
    rows_by_chunk, chunk_by_chunk = rows[by_chunk], chunk_of[by_chunk]
    parts = []
    for number in np.unique(chunk_of):
        picked = rows_by_chunk[chunk_by_chunk == number] - chunk_starts[number]
        parts.append(chunks[number].take(pa.array(picked)))
    if not parts:
        return pa.array([], pa.large_string())
    grouped = parts[0] if len(parts) == 1 else pa.concat_arrays(parts)
    return grouped.take(pa.array(np.argsort(by_chunk)))


def _join_groups(pieces: list[_Pieces], separator: str,
                 groups_per_block: int = 100_000) -> tuple[np.ndarray, pa.ChunkedArray]:
    """Join the pieces of each group (by ``order``, then row order) with ``separator``.

    Pieces whose group is -1 are skipped. Returns the distinct groups (sorted) and one joined
    string per group. Arrow copies the strings (take, then join) ``groups_per_block`` groups at
    a time, so the memory peak is the input plus the output plus one block.
    """
    group = np.concatenate([p.group for p in pieces])
    order = np.concatenate([p.order for p in pieces])
    chunks = [chunk for p in pieces for chunk in p.text.chunks]
    selected = np.flatnonzero(group >= 0)
    sort = selected[np.lexsort((order[selected], group[selected]))]  # stable: ties keep rows
    sorted_groups = group[sort]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    ends = np.r_[starts[1:], len(sort)]
    separator_scalar = pa.scalar(separator, pa.large_string())
    joined = []
    for first in range(0, len(starts), groups_per_block):
        block_starts = starts[first:first + groups_per_block]
        low, high = block_starts[0], ends[first + len(block_starts) - 1]
        taken = pc.fill_null(_take_rows(chunks, sort[low:high]), "")
        offsets = pa.array(np.r_[block_starts - low, high - low].astype(np.int64))
        lists = pa.LargeListArray.from_arrays(offsets, taken)
        joined.append(pc.binary_join(lists, separator_scalar))
    return sorted_groups[starts], pa.chunked_array(joined, pa.large_string())


def _note_rank(note_types: pd.Series, note_type_order: tuple[str, ...]) -> np.ndarray:
    others = sorted(set(note_types.unique()) - set(note_type_order))
    ranks = {name: rank for rank, name in enumerate(list(note_type_order) + others)}
    return note_types.map(ranks).to_numpy(dtype=np.int64)


def _section(positions: np.ndarray, lines: pd.Series, header: str, rank: int) -> _Pieces:
    """One piece per course: ``header`` and the course's lines, one per row, in row order."""
    keep = positions >= 0
    positions, lines = positions[keep], lines[keep]
    groups, joined = _join_groups(
        [_Pieces(positions, np.zeros(len(positions), np.int64), _arrow_text(lines))], "\n")
    large = pa.large_string()
    body = pc.binary_join_element_wise(pa.scalar(header, large), joined, pa.scalar("\n", large))
    return _Pieces(groups, np.full(len(groups), rank, np.int64), body)


def build_texts(cohort: contract.Cohort, course_ids: pd.Series,
                note_type_order: tuple[str, ...] = PrepareConfig.note_type_order) -> pd.Series:
    """One text per course in ``course_ids`` (index: course_id), in the module doc's format.

    Courses with no notes, medications or labs get an empty string.
    """
    index = pd.Index(course_ids)
    notes = cohort.notes
    pieces = [_Pieces(index.get_indexer(notes["course_id"]),
                      _note_rank(notes["note_type"], note_type_order), _arrow_text(notes["text"]))]
    last_rank = len(note_type_order) + notes["note_type"].nunique()
    medications = cohort.medications
    if len(medications):
        lines = "- " + medications["drug"].astype("str")
        pieces.append(_section(index.get_indexer(medications["course_id"]), lines,
                               "Medications:", last_rank + 1))
    labs = cohort.labs
    if len(labs):
        unit = labs["unit"] if "unit" in labs else pd.Series(None, index=labs.index, dtype="str")
        unit = (" " + unit.astype("str")).where(unit.notna(), "")
        lines = "- " + labs["test"].astype("str") + ": " + labs["value"].astype("str") + unit
        pieces.append(_section(index.get_indexer(labs["course_id"]), lines,
                               "Lab results:", last_rank + 2))
    groups, joined = _join_groups(pieces, SECTION_SEPARATOR)
    if len(groups) < len(index):  # courses without any piece point at one extra empty text
        where = np.full(len(index), len(groups), dtype=np.int64)
        where[groups] = np.arange(len(groups))
        empty = pa.array([""], pa.large_string())
        joined = pa.chunked_array([_take_rows(joined.chunks + [empty], where)])
    return _to_str_series(joined, index)


def texts_for(texts: pd.Series, course_ids: pd.Series) -> pd.Series:
    """The texts of ``course_ids`` in that order, taken in Arrow (one copy)."""
    positions = texts.index.get_indexer(course_ids)
    taken = _take_rows(_arrow_text(texts).chunks, positions)
    return _to_str_series(taken, pd.RangeIndex(len(positions)))


# Filters


def _flow_row(step: int, name: str, enabled: bool, courses: pd.DataFrame,
              before: np.ndarray, after: np.ndarray) -> dict:
    patients_before = courses.loc[before, "patient_id"].nunique()
    patients_after = courses.loc[after, "patient_id"].nunique()
    return {"step": step, "name": name, "enabled": enabled,
            "courses_before": int(before.sum()), "courses_removed": int(before.sum() - after.sum()),
            "courses_after": int(after.sum()), "patients_before": int(patients_before),
            "patients_removed": int(patients_before - patients_after),
            "patients_after": int(patients_after)}


def _courses_with(codes: pd.DataFrame, mask: pd.Series) -> pd.Index:
    return pd.Index(codes.loc[mask, "course_id"].unique())


def apply_filters(cohort: contract.Cohort, codes: pd.DataFrame, config: PrepareConfig
                  ) -> tuple[np.ndarray, pd.DataFrame, pd.Series]:
    """Run the seven filters; return the kept mask over ``cohort.courses``, the flow and texts.

    ``codes`` is :func:`normalise_codes` of ``cohort.codes``. The texts are built for the
    courses left after step 5 (index: course_id).
    """
    courses = cohort.courses
    ids = courses["course_id"]
    kept = np.ones(len(courses), dtype=bool)
    flow = []

    def step(number: int, name: str, enabled: bool, remove) -> None:
        nonlocal kept
        before = kept.copy()
        if enabled:
            kept = kept & ~np.asarray(remove(), dtype=bool)
        flow.append(_flow_row(number, name, enabled, courses, before, kept))

    step(1, "no_codes", config.drop_no_codes, lambda: ~ids.isin(codes["course_id"]))
    discharge = cohort.notes["note_type"].isin(config.discharge_note_types)
    step(2, "no_discharge_summary", config.drop_no_discharge_summary,
         lambda: ~ids.isin(cohort.notes.loc[discharge, "course_id"]))
    step(3, "only_z_codes", config.drop_only_z_codes,
         lambda: ids.isin(codes["course_id"]) & ~ids.isin(
             _courses_with(codes, ~codes["l3"].str.startswith("Z"))))
    step(4, "invalid_codes", config.drop_invalid_codes,
         lambda: ids.isin(_courses_with(codes, ~codes["valid"])))

    def rare_courses() -> pd.Series:
        live = codes[codes["course_id"].isin(ids[kept])].drop_duplicates(["course_id", "l3"])
        counts = live["l3"].value_counts()
        rare = counts.index[counts < config.min_category_count]
        return ids.isin(_courses_with(live, live["l3"].isin(rare)))

    step(5, "rare_categories", config.min_category_count > 0, rare_courses)
    texts = build_texts(cohort, ids[kept], config.note_type_order)
    long_ids = texts.index[texts.str.len() > (config.max_text_chars or np.inf)]
    step(6, "long_text", config.max_text_chars is not None, lambda: ids.isin(long_ids))
    step(7, "specialties", len(config.drop_specialties) > 0,
         lambda: courses["specialty"].isin(config.drop_specialties))
    return kept, pd.DataFrame(flow, columns=FLOW_COLUMNS), texts


# Split


def _split_size(size: float, patients: int, name: str) -> int:
    if size < 0:
        raise ValueError(f"{name} = {size} is negative; fix: give a fraction (< 1) or a count")
    return int(round(size * patients)) if size < 1 else int(size)


def split_patients(patient_ids: pd.Series, val_size: float, test_size: float,
                   seed: int) -> pd.DataFrame:
    """Assign each patient to train/val/test; columns ``patient_id, split, patient_rank``.

    Patients are sorted, shuffled with ``seed``, and taken for test, then val, the rest train.
    """
    patients = np.sort(pd.unique(patient_ids))
    n_test = _split_size(test_size, len(patients), "test_size")
    n_val = _split_size(val_size, len(patients), "val_size")
    if n_test + n_val >= len(patients):
        raise ValueError(
            f"val_size + test_size take {n_val + n_test} of {len(patients)} patients, leaving "
            "none for training; fix: lower val_size/test_size (fractions < 1 or counts)"
        )
    order = np.random.default_rng(seed).permutation(len(patients))
    shuffled = patients[order]
    split = np.array(["test"] * n_test + ["val"] * n_val + ["train"] * (len(patients) - n_test -
                                                                       n_val))
    rank = np.r_[np.arange(n_test), np.arange(n_val), np.arange(len(patients) - n_test - n_val)]
    return pd.DataFrame({"patient_id": shuffled, "split": split, "patient_rank": rank})


# The whole step


def _table_rows(courses: pd.DataFrame, lists: list[pd.DataFrame],
                assignment: pd.DataFrame) -> pd.DataFrame:
    """One row per kept course with every output column but ``text``, plus ``split``."""
    columns = ["course_id", "patient_id", "specialty", "department"]
    if "inpatient" in courses:
        columns.append("inpatient")
    rows = courses[columns].reset_index(drop=True)
    for frame in lists:
        for column in frame.columns:
            values = frame[column].reindex(rows["course_id"])
            if isinstance(values.dtype, pd.ArrowDtype):
                values = _filled_lists(values)
            rows[column] = values.to_numpy() if not isinstance(values.dtype, pd.ArrowDtype) \
                else values.array
    return rows.merge(assignment, on="patient_id", how="left", validate="many_to_one")


def write_split(path: Path, frame: pd.DataFrame) -> None:
    """Write a split atomically as plain Parquet (lists as ``list<string>``, no pandas dtypes).

    Readers get ordinary columns back from ``pd.read_parquet`` (lists as arrays of strings).
    """
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _check_disjoint(frames: dict[str, pd.DataFrame]) -> None:
    """Assert that no patient appears in two splits."""
    owner = pd.concat([frame[["patient_id"]].drop_duplicates().assign(split=name)
                       for name, frame in frames.items()])
    shared = owner[owner["patient_id"].duplicated(keep=False)]
    assert shared.empty, f"patients in two splits: {shared.head(10).to_dict('records')}"


def prepare(data_dir: str | Path, out_dir: str | Path,
            config: PrepareConfig | None = None) -> PrepareResult:
    """Filter, concatenate and split the cohort in ``data_dir``; write the splits to ``out_dir``.

    Writes ``train.parquet``, ``val.parquet``, ``test.parquet``, ``labels.json``, ``flow.csv``
    and ``manifest.json`` (config, input manifest, counts), each atomically.
    """
    config = config or PrepareConfig()
    out_dir = Path(out_dir)
    cohort = contract.load(data_dir)
    system = cohort.code_system
    codes = normalise_codes(cohort.codes, system)
    kept, flow, texts = apply_filters(cohort, codes, config)
    cohort.notes = cohort.notes.iloc[:0]  # the texts now hold all the notes' text still needed
    courses = cohort.courses[kept]
    kept_ids = pd.Index(courses["course_id"])
    lists = [code_lists(codes[codes["course_id"].isin(kept_ids)], "codes")]
    if cohort.truth is not None:
        truth = normalise_codes(cohort.truth[cohort.truth["course_id"].isin(kept_ids)], system)
        lists.append(code_lists(truth, "true", with_evidence=True))
    if cohort.distractors is not None:
        distractors = cohort.distractors[cohort.distractors["course_id"].isin(kept_ids)]
        lists.append(distractor_lists(distractors, system))
    assignment = split_patients(courses["patient_id"], config.val_size, config.test_size,
                                config.seed)
    rows = _table_rows(courses, lists, assignment)
    frames = {}
    for name in SPLITS:
        frame = rows[rows["split"] == name].drop(columns="split")
        sort_keys = ["patient_rank", "course_id"] if name == "train" else ["course_id"]
        frames[name] = frame.sort_values(sort_keys, kind="stable").reset_index(drop=True)
    _check_disjoint(frames)
    labels = {level: _vocabulary(frames["train"][f"codes_{level}"]) for level in ("l3", "full")}
    counts = {name: {"courses": len(frame), "patients": int(frame["patient_id"].nunique())}
              for name, frame in frames.items()}
    counts["labels"] = {level: len(values) for level, values in labels.items()}
    text_after = "inpatient" if "inpatient" in rows else "department"
    for name in SPLITS:
        frame = frames.pop(name)  # written one at a time: one split's text in memory
        frame.insert(frame.columns.get_loc(text_after) + 1, "text",
                     texts_for(texts, frame["course_id"]))
        write_split(out_dir / f"{name}.parquet", frame)
        del frame
    write_json(out_dir / "labels.json", labels)
    write_csv(out_dir / "flow.csv", flow)
    write_json(out_dir / "manifest.json", {
        "config": config.to_dict(), "data_dir": str(data_dir), "input_manifest": cohort.manifest,
        "code_system": system, "counts": counts, "flow": flow.to_dict("records"),
        "medcoding_version": __version__,
    })
    return PrepareResult(out_dir=out_dir, flow=flow, counts=counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="medcoding prepare",
        description="Filter a cohort (the study's steps), build one text per course and split "
                    "by patient. Writes train/val/test.parquet, labels.json, flow.csv.")
    parser.add_argument("--data", required=True, type=Path, help="cohort directory (contract)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--config", type=Path, default=None,
                        help=f"YAML file of PrepareConfig keys (defaults: {DEFAULTS_FILE.name})")
    args = parser.parse_args(argv)
    config = PrepareConfig.from_yaml(args.config) if args.config else PrepareConfig()
    result = prepare(args.data, args.out, config)
    print(result.flow.to_string(index=False))
    for name in SPLITS:
        print(f"{name:<6}{result.counts[name]['courses']:>10,} courses "
              f"{result.counts[name]['patients']:>10,} patients")
    labels = result.counts["labels"]
    print(f"labels: {labels['l3']} level-3, {labels['full']} full codes")
    print(f"wrote {args.out}")
    return 0

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
8. ``no_note_text``: courses whose notes are all empty (or that have none), which would be
   coded from medications and labs alone (``drop_no_note_text``; with it off they are kept).
   Whenever such courses are left after step 7, ``prepare`` warns with their number.

A filter that leaves no course stops ``prepare`` with a :class:`PrepareError` naming it and
showing the flow table; more than ``INVALID_CODE_HINT`` (5%) invalid codes give a
:class:`PrepareWarning` that the code system in ``manifest.json`` may be wrong.

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

Scale
    ``notes``, ``medications`` and ``labs`` are never loaded whole: they are read in batches of
    rows, once to measure each course's text for the filters and once to route every piece of
    text to the output batch (65,536 courses) it belongs to, through a temporary hive-partitioned
    Parquet dataset in the output folder (``pyarrow.dataset``). Each output batch is then joined
    into its texts and written as one row group, so memory holds the code tables and one batch,
    not the corpus. A split of up to 65,536 courses is one row group, byte for byte the file an
    in-memory ``pyarrow.parquet.write_table`` of the whole split writes.

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
import contextlib
import dataclasses
import sys
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from pydantic import Field

from medcoding import __version__, icd10
from medcoding import config as configs
from medcoding.cohort import contract
from medcoding.config import NonNegativeInt, PositiveInt
from medcoding.io import atomic_path, write_csv, write_json

DEFAULTS_FILE = Path(__file__).with_name("preprocess_defaults.yaml")
SPLITS = ("train", "val", "test")
TEXT_TABLES = ("notes", "medications", "labs")  # streamed in batches, never loaded whole
SECTION_SEPARATOR = "\n\n"
#: ``val_size`` / ``test_size``: a fraction of the patients below 1, a patient count from 1 on.
SplitSize = Annotated[int | float, Field(ge=0)]
FLOW_COLUMNS = ["step", "name", "enabled", "courses_before", "courses_removed", "courses_after",
                "patients_before", "patients_removed", "patients_after"]


@dataclass(frozen=True)
class PrepareConfig:
    """Every choice of :func:`prepare`; the defaults follow the study (see the module doc).

    Keys, types and ranges are checked on construction (:mod:`medcoding.config`)."""

    drop_no_codes: bool = True
    drop_no_discharge_summary: bool = True
    discharge_note_types: tuple[str, ...] = ("discharge_summary",)
    drop_only_z_codes: bool = True
    drop_invalid_codes: bool = True
    min_category_count: NonNegativeInt = 10
    max_text_chars: PositiveInt | None = 10_000
    drop_specialties: tuple[str, ...] = ("adult_psychiatry",)
    drop_no_note_text: bool = True
    note_type_order: tuple[str, ...] = ("discharge_summary", "admission_note", "progress_note")
    val_size: SplitSize = 0.1
    test_size: SplitSize = 0.2
    seed: NonNegativeInt = 0

    def __post_init__(self) -> None:
        configs.check(PrepareConfig, dataclasses.asdict(self), "PrepareConfig")

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> PrepareConfig:
        """Build a config from a mapping (a list key may be one string); unknown keys, wrong
        types and values out of range raise :class:`medcoding.config.ConfigError`."""
        lists = {f.name for f in dataclasses.fields(cls) if isinstance(f.default, tuple)}
        if isinstance(values, dict):
            values = {key: (value,) if key in lists and isinstance(value, str) else value
                      for key, value in values.items()}
        return configs.build(cls, values, source)

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
    if not len(selected):
        return np.zeros(0, np.int64), pa.chunked_array([], pa.large_string())
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


def _section(positions: np.ndarray, lines: pa.ChunkedArray, header: str, rank: int) -> _Pieces:
    """One piece per course: ``header`` and the course's lines, one per row, in row order."""
    keep = positions >= 0
    groups, joined = _join_groups(
        [_Pieces(positions[keep], np.zeros(int(keep.sum()), np.int64),
                 lines.filter(pa.array(keep)))], "\n")
    large = pa.large_string()
    body = pc.binary_join_element_wise(pa.scalar(header, large), joined, pa.scalar("\n", large))
    return _Pieces(groups, np.full(len(groups), rank, np.int64), body)


def medication_lines(frame: pd.DataFrame) -> pd.Series:
    """``- {drug}`` per medication row."""
    return "- " + frame["drug"].astype("str")


def lab_lines(frame: pd.DataFrame) -> pd.Series:
    """``- {test}: {value} {unit}`` per lab row (``" {unit}"`` left out where missing)."""
    unit = frame["unit"] if "unit" in frame else pd.Series(None, index=frame.index, dtype="str")
    unit = (" " + unit.astype("str")).where(unit.notna(), "")
    return "- " + frame["test"].astype("str") + ": " + frame["value"].astype("str") + unit


#: the sections after the notes: (table, columns read, lines of a batch, header)
SECTIONS = (("medications", ["course_id", "drug"], medication_lines, "Medications:"),
            ("labs", ["course_id", "test", "value", "unit"], lab_lines, "Lab results:"))


@dataclass
class TextStats:
    """What the filters need to know of the text tables, per course (``courses`` order).

    ``chars`` is the length of the course's text as :func:`assemble_texts` builds it,
    ``note_chars`` the characters of its notes alone; ``note_types`` every note type seen.
    """

    has_discharge: np.ndarray
    chars: np.ndarray
    note_chars: np.ndarray
    note_types: list[str]


def _columns(cohort: contract.Cohort, table: str, wanted: list[str]) -> list[str]:
    available = getattr(cohort, table)
    names = available.columns if isinstance(available, pd.DataFrame) else \
        pq.ParquetFile(available.path).schema_arrow.names
    return [name for name in wanted if name in names]


def _batches(cohort: contract.Cohort, table: str, columns: list[str], batch_rows: int):
    """The rows of a cohort table (whole or lazy) in batches indexed by row number."""
    source = getattr(cohort, table)
    if isinstance(source, contract.TableFile):
        yield from contract.iter_batches(cohort, table, _columns(cohort, table, columns),
                                         batch_rows)
        return
    for first in range(0, len(source), batch_rows):
        yield source.iloc[first:first + batch_rows]


def scan_texts(cohort: contract.Cohort, courses: pd.Index, config: PrepareConfig,
               batch_rows: int = 65_536) -> TextStats:
    """One pass over notes, medications and labs, a batch at a time (no text is kept)."""
    n = len(courses)
    has_discharge = np.zeros(n, bool)
    chars, note_chars = np.zeros(n, np.int64), np.zeros(n, np.int64)
    pieces = np.zeros(n, np.int64)
    note_types: set[str] = set()
    for frame in _batches(cohort, "notes", ["course_id", "note_type", "text"], batch_rows):
        where = courses.get_indexer(frame["course_id"])
        has_discharge[where[frame["note_type"].isin(config.discharge_note_types).to_numpy()]] = True
        lengths = frame["text"].str.len().fillna(0).to_numpy(np.int64)
        note_chars += np.bincount(where, lengths, n).astype(np.int64)
        pieces += np.bincount(where, minlength=n)
        note_types.update(frame["note_type"].unique())
    chars += note_chars
    for table, columns, lines_of, header in SECTIONS:
        lines = np.zeros(n, np.int64)
        line_chars = np.zeros(n, np.int64)
        for frame in _batches(cohort, table, columns, batch_rows):
            where = courses.get_indexer(frame["course_id"])
            lines += np.bincount(where, minlength=n)
            widths = lines_of(frame).str.len().to_numpy(np.int64) + 1  # "\n" + line
            line_chars += np.bincount(where, widths, n).astype(np.int64)
        has = lines > 0
        chars += np.where(has, len(header) + line_chars, 0)
        pieces += has
    chars += 2 * np.maximum(pieces - 1, 0)  # sections joined by SECTION_SEPARATOR
    return TextStats(has_discharge, chars, note_chars, sorted(note_types))


def note_ranks(note_types: list[str], note_type_order: tuple[str, ...]) -> dict[str, int]:
    """Rank of each note type: ``note_type_order`` first, the others alphabetically."""
    others = sorted(set(note_types) - set(note_type_order))
    return {name: rank for rank, name in enumerate(list(note_type_order) + others)}


def assemble_texts(n: int, notes: pa.Table | None, sections: list[pa.Table | None],
                   note_rank: dict[str, int], headers: list[str]) -> pa.Array:
    """The texts of ``n`` courses (in the module doc's format) from their pieces.

    ``notes`` has columns ``slot`` (the course's position, 0..n-1), ``note_type`` and ``text``;
    each table of ``sections`` (one per header) ``slot`` and ``text`` (one line per row). Rows are
    in table order. Courses without any piece get an empty string.
    """
    pieces = []
    last_rank = len(note_rank)
    if notes is not None and notes.num_rows:
        ranks = pd.Series(notes.column("note_type").to_pandas()).map(note_rank)
        pieces.append(_Pieces(notes.column("slot").to_numpy(), ranks.to_numpy(np.int64),
                              notes.column("text").cast(pa.large_string())))
    for number, (table, header) in enumerate(zip(sections, headers, strict=True)):
        if table is not None and table.num_rows:
            pieces.append(_section(table.column("slot").to_numpy(),
                                   table.column("text").cast(pa.large_string()), header,
                                   last_rank + 1 + number))
    if not pieces:
        return pa.array([""] * n, pa.large_string())
    groups, joined = _join_groups(pieces, SECTION_SEPARATOR)
    if len(groups) < n:  # courses without any piece point at one extra empty text
        where = np.full(n, len(groups), dtype=np.int64)
        where[groups] = np.arange(len(groups))
        empty = pa.array([""], pa.large_string())
        return _take_rows(joined.chunks + [empty], where)
    return joined.combine_chunks()


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


def apply_filters(courses: pd.DataFrame, codes: pd.DataFrame, texts: TextStats,
                  config: PrepareConfig) -> tuple[np.ndarray, pd.DataFrame]:
    """Run the eight filters; return the kept mask over ``courses`` and the flow table.

    ``codes`` is :func:`normalise_codes` of the cohort's codes, ``texts`` :func:`scan_texts`.
    """
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
    step(2, "no_discharge_summary", config.drop_no_discharge_summary,
         lambda: ~texts.has_discharge)
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
    step(6, "long_text", config.max_text_chars is not None,
         lambda: texts.chars > (config.max_text_chars or np.inf))
    step(7, "specialties", len(config.drop_specialties) > 0,
         lambda: courses["specialty"].isin(config.drop_specialties))
    without_text = int((kept & (texts.note_chars == 0)).sum())
    if without_text:
        fate = ("filter 8 (no_note_text) removes them" if config.drop_no_note_text else
                "they are kept (drop_no_note_text is off)")
        warnings.warn(f"{without_text:,} of {int(kept.sum()):,} courses left have no note text "
                      f"(their notes are empty or missing): {fate}; check notes.parquet, column "
                      "'text'", PrepareWarning, stacklevel=3)
    step(8, "no_note_text", config.drop_no_note_text, lambda: texts.note_chars == 0)
    return kept, pd.DataFrame(flow, columns=FLOW_COLUMNS)


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


def _split_frames(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The rows of each split, without ``split``: training by (``patient_rank``, ``course_id``),
    validation and test by ``course_id`` (one sort of all rows, then slices)."""
    split = rows["split"].map({name: number for number, name in enumerate(SPLITS)})
    rank = rows["patient_rank"].where(rows["split"] == "train", 0)
    order = rows.assign(_split=split, _rank=rank).sort_values(
        ["_split", "_rank", "course_id"], kind="stable").index
    ordered = rows.drop(columns="split").loc[order].reset_index(drop=True)
    bounds = np.searchsorted(np.sort(split.to_numpy()), np.arange(len(SPLITS) + 1))
    return {name: ordered.iloc[bounds[number]:bounds[number + 1]].reset_index(drop=True)
            for number, name in enumerate(SPLITS)}


def write_split(path: Path, frame: pd.DataFrame, texts: Iterable[pa.Array], text_after: str,
                batch_courses: int) -> None:
    """Write a split atomically as plain Parquet (lists as ``list<string>``, no pandas dtypes).

    ``texts`` holds the text of each batch of ``batch_courses`` rows, in order; each batch is one
    row group. Readers get ordinary columns back from ``pd.read_parquet`` (lists as arrays of
    strings).
    """
    with atomic_path(path) as tmp, contextlib.ExitStack() as stack:
        writer = None
        starts = range(0, max(len(frame), 1), batch_courses)
        for first, text in zip(starts, texts, strict=True):
            part = frame.iloc[first:first + batch_courses]
            part.insert(part.columns.get_loc(text_after) + 1, "text",
                        _to_str_series(text, part.index))
            table = pa.Table.from_pandas(part, preserve_index=False).replace_schema_metadata(None)
            if writer is None:
                schema = table.schema
                writer = stack.enter_context(pq.ParquetWriter(tmp, schema))
            elif table.schema != schema:  # e.g. a batch whose optional column is all null
                table = table.cast(schema)
            writer.write_table(table)


# Streaming the text tables into output order

#: the pieces of text routed to output batches, one Parquet file per batch
_PIECE_SCHEMAS = {
    "notes": pa.schema([("slot", pa.int64()), ("seq", pa.int64()),
                        ("note_type", pa.large_string()), ("text", pa.large_string())]),
    "lines": pa.schema([("slot", pa.int64()), ("seq", pa.int64()), ("text", pa.large_string())]),
}


@dataclass
class _Layout:
    """Where each course goes: output batch (``bucket``, -1: not kept) and row in it (``slot``)."""

    bucket: np.ndarray
    slot: np.ndarray
    batches: dict[str, list[tuple[int, int]]]  # split -> (bucket, rows) per batch, in order


def _layout(frames: dict[str, pd.DataFrame], courses: pd.Index, batch_courses: int) -> _Layout:
    bucket = np.full(len(courses), -1, np.int32)
    slot = np.zeros(len(courses), np.int64)
    batches, first_bucket = {}, 0
    for name in SPLITS:
        where = courses.get_indexer(frames[name]["course_id"])
        rank = np.arange(len(where))
        bucket[where] = first_bucket + rank // batch_courses
        slot[where] = rank % batch_courses
        sizes = [min(batch_courses, len(where) - first)
                 for first in range(0, max(len(where), 1), batch_courses)]
        batches[name] = [(first_bucket + number, size) for number, size in enumerate(sizes)]
        first_bucket += len(sizes)
    return _Layout(bucket, slot, batches)


def _route(cohort: contract.Cohort, courses: pd.Index, layout: _Layout, directory: Path,
           batch_rows: int) -> None:
    """Append every note and every medication/lab line of a kept course, batch by batch, to
    ``directory/<table>/<output batch>.parquet`` (one pass over each table; bounded memory)."""
    tables = [("notes", ["course_id", "note_type", "text"], lambda frame: frame["text"],
               _PIECE_SCHEMAS["notes"])]
    tables += [(table, columns, lines_of, _PIECE_SCHEMAS["lines"])
               for table, columns, lines_of, _ in SECTIONS]
    for table, columns, text_of, schema in tables:
        (directory / table).mkdir(parents=True)
        with contextlib.ExitStack() as stack:
            writers: dict[int, pq.ParquetWriter] = {}
            for frame in _batches(cohort, table, columns, batch_rows):
                where = courses.get_indexer(frame["course_id"])
                bucket = layout.bucket[where]
                order = np.argsort(bucket, kind="stable")
                order = order[bucket[order] >= 0]
                if not len(order):
                    continue
                frame, where, bucket = frame.iloc[order], where[order], bucket[order]
                values = {"slot": layout.slot[where], "seq": frame.index.to_numpy(np.int64)}
                if "note_type" in schema.names:
                    values["note_type"] = _arrow_text(frame["note_type"]).combine_chunks()
                values["text"] = _arrow_text(text_of(frame)).combine_chunks()
                pieces = pa.table(values, schema=schema)
                starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
                for first, last in zip(starts, np.r_[starts[1:], len(bucket)], strict=True):
                    number = int(bucket[first])
                    if number not in writers:
                        writers[number] = stack.enter_context(pq.ParquetWriter(
                            directory / table / f"{number}.parquet", schema,
                            compression="none"))
                    writers[number].write_table(pieces.slice(first, last - first))
        pa.default_memory_pool().release_unused()


def _read_bucket(directory: Path, number: int) -> pa.Table | None:
    """The pieces routed to output batch ``number``, in table order (``None``: no piece)."""
    path = directory / f"{number}.parquet"
    if not path.is_file():
        return None
    table = pq.read_table(path)
    return table.take(pc.sort_indices(table, [("seq", "ascending")]))


def _split_texts(directory: Path, batches: list[tuple[int, int]], note_rank: dict[str, int]):
    """The texts of each output batch of a split, in order."""
    headers = [header for *_, header in SECTIONS]
    for number, size in batches:
        notes = _read_bucket(directory / "notes", number)
        sections = [_read_bucket(directory / table, number) for table, *_ in SECTIONS]
        yield assemble_texts(size, notes, sections, note_rank, headers)


def _check_disjoint(frames: dict[str, pd.DataFrame]) -> None:
    """Assert that no patient appears in two splits."""
    owner = pd.concat([frame[["patient_id"]].drop_duplicates().assign(split=name)
                       for name, frame in frames.items()])
    shared = owner[owner["patient_id"].duplicated(keep=False)]
    assert shared.empty, f"patients in two splits: {shared.head(10).to_dict('records')}"


class PrepareError(ValueError):
    """The cohort cannot be prepared as asked; the message says why and how to fix it."""


class PrepareWarning(UserWarning):
    """The cohort was prepared, but probably not as meant (the message says why)."""


#: share of invalid codes above which prepare says the declared code system may be wrong
INVALID_CODE_HINT = 0.05
CODE_SYSTEM_NAMES = {"who": "WHO ICD-10", "cm": "ICD-10-CM"}
#: the config key that switches each filter off or changes it
FILTER_KEYS = {"no_codes": "drop_no_codes", "no_discharge_summary": "discharge_note_types",
               "only_z_codes": "drop_only_z_codes", "invalid_codes": "drop_invalid_codes",
               "rare_categories": "min_category_count", "long_text": "max_text_chars",
               "specialties": "drop_specialties", "no_note_text": "drop_no_note_text"}


def code_system_hint(codes: pd.DataFrame, system: str) -> str | None:
    """A warning when more than ``INVALID_CODE_HINT`` of the codes are invalid in ``system``."""
    if codes.empty:
        return None
    invalid = float((~codes["valid"]).mean())
    if invalid <= INVALID_CODE_HINT:
        return None
    other = "cm" if system == "who" else "who"
    raw = codes["code"].astype(str).str.strip().str.upper()
    other_invalid = float((~icd10.valid_mask(raw, other)).mean())
    message = (f"codes.parquet: {invalid:.0%} of the codes ({int((~codes['valid']).sum()):,} of "
               f"{len(codes):,}) are not defined in {CODE_SYSTEM_NAMES[system]}, and filter 4 "
               "(invalid_codes) removes every course holding one. The code system declared in "
               f'manifest.json ("code_system": "{system}") may be wrong')
    if other_invalid < invalid:
        message += (f": in {CODE_SYSTEM_NAMES[other]} only {other_invalid:.0%} would be invalid. "
                    f'Fix: if the codes are {CODE_SYSTEM_NAMES[other]}, set "code_system": '
                    f'"{other}" in manifest.json')
    return message + "."


def nothing_left(flow: pd.DataFrame) -> str:
    """Why no course is left: the filter that removed the last ones, and the flow table."""
    table = flow.to_string(index=False)
    if flow.empty or flow["courses_before"].iloc[0] == 0:
        return f"courses.parquet has no rows: there is nothing to prepare\n\n{table}"
    row = flow[flow["courses_after"] == 0].iloc[0]
    return (f"filter {row['step']} ({row['name']}) removed the last {row['courses_before']:,} "
            f"courses: no course is left to prepare\n\n{table}\n\nfix: check the input tables "
            f"that filter reads, or change {FILTER_KEYS[row['name']]} in a --config file "
            f"(see {DEFAULTS_FILE.name})")


def prepare(data_dir: str | Path, out_dir: str | Path, config: PrepareConfig | None = None,
            batch_courses: int = 32_768, batch_rows: int = 65_536) -> PrepareResult:
    """Filter, concatenate and split the cohort in ``data_dir``; write the splits to ``out_dir``.

    Writes ``train.parquet``, ``val.parquet``, ``test.parquet``, ``labels.json``, ``flow.csv``
    and ``manifest.json`` (config, input manifest, counts), each atomically. The note,
    medication and lab tables are read ``batch_rows`` rows at a time, twice (once for the
    filters, once to route their text to the output batch of ``batch_courses`` courses it
    belongs to, in a temporary folder under ``out_dir``); memory holds the other tables and one
    output batch, not the corpus.
    """
    config = config or PrepareConfig()
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if out_dir.resolve() == data_dir.resolve():
        raise PrepareError(f"--out {out_dir} is the cohort directory (--data): prepare would "
                           "overwrite its manifest.json; fix: give another output directory, "
                           f"e.g. --out {data_dir.parent / 'prepared'}")
    cohort = contract.load(data_dir, lazy=TEXT_TABLES)
    system = cohort.code_system
    codes = normalise_codes(cohort.codes, system)
    hint = code_system_hint(codes, system)
    if hint:
        warnings.warn(hint, PrepareWarning, stacklevel=2)
    course_index = pd.Index(cohort.courses["course_id"])
    text_stats = scan_texts(cohort, course_index, config, batch_rows)
    pa.default_memory_pool().release_unused()
    kept, flow = apply_filters(cohort.courses, codes, text_stats, config)
    if not kept.any():
        raise PrepareError(nothing_left(flow))
    # code lists of the kept courses; each table is let go once used (memory: the splits' rows)
    courses = cohort.courses[kept]
    cohort.courses = cohort.courses[["course_id"]]  # what iter_batches checks course ids against
    kept_ids = pd.Index(courses["course_id"])
    lists = [code_lists(codes[codes["course_id"].isin(kept_ids)], "codes")]
    del codes
    cohort.codes = None
    if cohort.truth is not None:
        truth = normalise_codes(cohort.truth[cohort.truth["course_id"].isin(kept_ids)], system)
        cohort.truth = None
        lists.append(code_lists(truth, "true", with_evidence=True))
        del truth
    if cohort.distractors is not None:
        distractors = cohort.distractors[cohort.distractors["course_id"].isin(kept_ids)]
        cohort.distractors = None
        lists.append(distractor_lists(distractors, system))
        del distractors
    try:
        assignment = split_patients(courses["patient_id"], config.val_size, config.test_size,
                                    config.seed)
    except ValueError as error:
        raise PrepareError(f"{error}\n\n{flow.to_string(index=False)}") from None
    rows = _table_rows(courses, lists, assignment)
    del courses, lists, kept_ids
    frames = _split_frames(rows)
    del rows
    _check_disjoint(frames)
    labels = {level: _vocabulary(frames["train"][f"codes_{level}"]) for level in ("l3", "full")}
    counts = {name: {"courses": len(frame), "patients": int(frame["patient_id"].nunique())}
              for name, frame in frames.items()}
    counts["labels"] = {level: len(values) for level, values in labels.items()}
    text_after = "inpatient" if "inpatient" in frames["train"] else "department"
    pa.default_memory_pool().release_unused()
    layout = _layout(frames, course_index, batch_courses)
    note_rank = note_ranks(text_stats.note_types, config.note_type_order)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".prepare-") as pieces:
        _route(cohort, course_index, layout, Path(pieces), batch_rows)
        for name in SPLITS:
            write_split(out_dir / f"{name}.parquet", frames.pop(name),
                        _split_texts(Path(pieces), layout.batches[name], note_rank), text_after,
                        batch_courses)
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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PrepareWarning)
        try:
            result = prepare(args.data, args.out, config)
        except PrepareError as error:
            print(f"medcoding prepare: {error}", file=sys.stderr)
            return 1
        finally:
            for warning in caught:
                print(f"warning: {warning.message}", file=sys.stderr)
    print(result.flow.to_string(index=False))
    for name in SPLITS:
        print(f"{name:<6}{result.counts[name]['courses']:>10,} courses "
              f"{result.counts[name]['patients']:>10,} patients")
    labels = result.counts["labels"]
    print(f"labels: {labels['l3']} level-3, {labels['full']} full codes")
    print(f"wrote {args.out}")
    return 0

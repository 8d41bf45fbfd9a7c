"""The data contract: the Parquet tables every cohort source writes and every later stage reads.

A cohort is a directory holding one Parquet file per table (``courses.parquet``, ...) and a
``manifest.json``. :data:`SCHEMAS` describes every column; :func:`load` reads the directory,
checks it against the contract and returns a :class:`Cohort`. Every problem raises a
:class:`ContractError` naming the file, the column, up to five example rows (row number in the
file, counted from 0, and value), how many rows are affected, and the fix. Nothing is dropped.

Tables
    ``courses``       one row per patient course (hospital admission or outpatient course)
    ``notes``         clinical notes of a course
    ``medications``   drugs given or prescribed during a course
    ``labs``          laboratory results of a course
    ``codes``         the human-assigned ICD-10 codes, exactly one primary per coded course
    ``truth``         synthetic cohorts only: the conditions truly present, with their evidence
    ``distractors``   synthetic cohorts only, optional: conditions *mentioned but not present*
    ``coding``        synthetic cohorts only, optional: why each true code was coded or missed and
                      why each human code that is not true was given (:data:`CODING_REASONS`)

``manifest.json`` holds at least ``"synthetic": true|false`` and ``"code_system": "who"|"cm"``.
A synthetic cohort must have ``truth``. ``medications`` and ``labs`` may be empty tables.

Column kinds
    ``id``        integer or text identifier
    ``text``      UTF-8 text (Parquet ``string``)
    ``bool``      true/false
    ``date``      Parquet date or timestamp
    ``value``     number or text (a lab value such as ``7.2`` or ``"negative"``)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from medcoding.io import write_json, write_parquet

# How the text shows a true condition (synthetic truth, column ``evidence``).
EVIDENCE_NAMED = ("primary", "suspected", "listed", "narrative", "buried")
EVIDENCE_IMPLIED = ("drug", "lab", "finding", "method")
EVIDENCE_LEVELS = EVIDENCE_NAMED + EVIDENCE_IMPLIED + ("undocumented",)
EVIDENCE_MEANING = {
    "primary": "the reason for the course, named in the presentation and the diagnosis",
    "suspected": "an uncertain inpatient diagnosis (suspected, probable), coded as ICD-10 asks",
    "listed": "named in a diagnosis, problem or history list",
    "narrative": "named once in the running text",
    "buried": "named once, mid-way through the longest section of a long course (a diabetes type "
              "among generic 'diabetes' mentions)",
    "drug": "shown only by a drug (an antihypertensive, metformin)",
    "lab": "shown only by a laboratory value (eGFR, sodium, haemoglobin)",
    "finding": "shown only by a finding (BMI 34, EF 30% on echo, BP 165/95 on amlodipine)",
    "method": "self-harm described only by its method, no intent written",
    "undocumented": "present (a chronic problem of the patient) but not written in this course",
}
# Why a mentioned condition is absent (synthetic distractors, column ``kind``).
DISTRACTOR_KINDS = {
    "negated": "negated, with scope over lists ('no signs of X or Y')",
    "ruled_out": "ruled out by a test",
    "to_exclude": "a plan to exclude it ('CT to exclude pulmonary embolism')",
    "differential": "a differential diagnosis of an uncertain primary, not confirmed",
    "suspected_outpatient": "suspected in an outpatient course (not coded, as ICD-10 asks)",
    "family_history": "in a relative",
    "past_history": "in the past, resolved (a year after birth and before the course)",
    "previous_attempt": "a previous suicide attempt (beside a current one or not)",
    "denied_attempt": "the note says there was no attempt or no intent",
    "ambiguous_overdose": "an overdose without stated intent (the poisoning is true, X60-X84 not)",
    "bypass_no_weight": "weight loss or gastric bypass without the current weight",
    "related_cardiovascular": "a heart condition treated with a blood-pressure drug, no "
                              "hypertension",
}
# Why a code was coded or missed by the human coder (synthetic coding, column ``reason``).
CODING_REASONS = {
    "coded_primary": "true primary, coded",
    "coded_suspected": "true uncertain inpatient diagnosis, coded",
    "coded_listed": "true, named in a list, coded",
    "coded_narrative": "true, named in the narrative, coded",
    "coded_buried": "true, buried in a long note, coded",
    "coded_implied": "true, shown only by a drug, lab, finding or method, coded",
    "carried_over": "true but not written in this course, coded from the previous course",
    "missed_listed": "true and listed, missed (no single factor stood out)",
    "missed_suspected": "true uncertain inpatient diagnosis, missed",
    "missed_narrative_only": "true, named only in the narrative, missed",
    "missed_buried": "true, buried in a long note, missed",
    "missed_implied_only": "true, shown only by a drug, lab, finding or method, missed",
    "missed_undocumented": "true but not written in this course, missed",
    "missed_not_reimbursed": "true, chapter XX (external causes, no reimbursement), missed",
    "missed_low_priority": "true, a code range coders give low priority (E66, I10-I15), missed",
    "missed_time_pressure": "true, missed under the specialty's time pressure",
    "missed_long_course": "true, missed in a long course",
    "replaced_by_unspecified": "true E10/E11 buried, coded as E14 instead",
    "replaced_by_sibling": "true, coded as a sibling code instead",
    "replaced_by_typo": "true, coded with a typo (an invalid code) instead",
    "course_not_coded": "true, the course has no codes at all",
    "carried_over_resolved": "not true: an acute code of the previous course carried over",
    "negated_mention": "not true: a negated, ruled-out or denied mention coded",
    "planned_exclusion": "not true: a condition to be excluded coded",
    "differential_coded": "not true: an unconfirmed differential diagnosis coded",
    "family_mention": "not true: a relative's condition coded",
    "historical_mention": "not true: a past condition (or previous attempt, old bypass) coded",
    "uncertain_outpatient": "not true: a suspected outpatient diagnosis coded against the rule",
    "ambiguous_intent": "not true: an overdose of unstated intent coded as self-harm",
    "inferred_from_related": "not true: hypertension inferred from a heart condition's drug",
    "unspecified_for_buried": "not true: E14 given for a buried diabetes type",
    "sibling_code": "not true: a sibling of the true code",
    "typo": "not true: an invalid code typed by mistake",
}
CODE_SYSTEMS = ("who", "cm")
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class ColumnSpec:
    kind: str
    required: bool
    meaning: str


def _col(kind: str, meaning: str, required: bool = True) -> ColumnSpec:
    return ColumnSpec(kind, required, meaning)


SCHEMAS: dict[str, dict[str, ColumnSpec]] = {
    "courses": {
        "course_id": _col("id", "identifier of the patient course; unique"),
        "patient_id": _col("id", "identifier of the patient; a patient may have several courses"),
        "start_date": _col("date", "first day of the course"),
        "department": _col("text", "department (ward or clinic) responsible for the course"),
        "specialty": _col("text", "medical specialty of the department, e.g. cardiology"),
        "inpatient": _col("bool", "true for admissions, false for outpatient courses", False),
    },
    "notes": {
        "course_id": _col("id", "course the note belongs to"),
        "note_type": _col("text", "discharge_summary, admission_note, progress_note, ..."),
        "text": _col("text", "the note's text"),
    },
    "medications": {
        "course_id": _col("id", "course the drug was given in"),
        "drug": _col("text", "drug name as written in the record"),
        "atc": _col("text", "ATC code of the drug", False),
    },
    "labs": {
        "course_id": _col("id", "course the result belongs to"),
        "test": _col("text", "name of the laboratory test"),
        "value": _col("value", "result, a number or text"),
        "unit": _col("text", "unit of the result", False),
    },
    "codes": {
        "course_id": _col("id", "course the code was assigned to"),
        "code": _col("text", "ICD-10 code as assigned (any form icd10.normalise reads)"),
        "is_primary": _col("bool", "true for the primary (main) diagnosis; one per course"),
    },
    "truth": {
        "course_id": _col("id", "course the condition is present in"),
        "code": _col("text", "ICD-10 code of a condition truly present"),
        "is_primary": _col("bool", "true for the true primary diagnosis; one per course"),
        "evidence": _col("text", "how the text shows it: " + " | ".join(EVIDENCE_LEVELS)),
    },
    "distractors": {
        "course_id": _col("id", "course whose text mentions the condition"),
        "code": _col("text", "ICD-10 code of a condition mentioned but NOT present"),
        "kind": _col("text", "why it is absent: " + " | ".join(DISTRACTOR_KINDS)),
    },
    "coding": {
        "course_id": _col("id", "course of the code"),
        "code": _col("text", "ICD-10 code in truth or in the human codes of the course"),
        "truly_present": _col("bool", "true when the code is in truth"),
        "human_coded": _col("bool", "true when the human coder assigned the code"),
        "reason": _col("text", "the mechanism: " + " | ".join(CODING_REASONS)),
    },
}
REQUIRED_TABLES = ("courses", "notes", "medications", "labs", "codes")
SYNTHETIC_TABLES = ("truth",)
OPTIONAL_TABLES = ("distractors", "coding")


class ContractError(ValueError):
    """A cohort directory breaks the data contract; the message says where and how to fix it."""

    def __init__(self, file: str, column: str | None, problem: str, fix: str,
                 rows: Iterable[tuple[int, object]] = (), count: int | None = None):
        self.file, self.column, self.problem, self.fix = file, column, problem, fix
        self.rows = list(rows)[:MAX_EXAMPLES]
        self.count = count
        where = file if column is None else f"{file}, column {column!r}"
        lines = [f"{where}: {problem}"]
        if count is not None:
            lines[0] += f" ({count} row{'s' if count != 1 else ''} affected)"
        if self.rows:
            examples = ", ".join(f"row {row}: {value!r}" for row, value in self.rows)
            lines.append(f"  examples: {examples}")
        lines.append(f"  fix: {fix}")
        super().__init__("\n".join(lines))


@dataclass
class Cohort:
    """One cohort in the data contract: a DataFrame per table and the manifest."""

    courses: pd.DataFrame
    notes: pd.DataFrame | TableFile  # TableFile: loaded with lazy=[...]
    medications: pd.DataFrame | TableFile
    labs: pd.DataFrame | TableFile
    codes: pd.DataFrame
    manifest: dict
    truth: pd.DataFrame | None = None
    distractors: pd.DataFrame | None = None
    coding: pd.DataFrame | None = None
    path: Path | None = field(default=None, compare=False)

    @property
    def synthetic(self) -> bool:
        return bool(self.manifest["synthetic"])

    @property
    def code_system(self) -> str:
        return str(self.manifest["code_system"])

    def tables(self) -> dict[str, pd.DataFrame]:
        names = REQUIRED_TABLES + SYNTHETIC_TABLES + OPTIONAL_TABLES
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


def schema_table() -> pd.DataFrame:
    """SCHEMAS as a tidy table (table, column, kind, required, meaning) for the data chapter."""
    rows = [
        {"table": table, "column": column, "kind": spec.kind, "required": spec.required,
         "meaning": spec.meaning}
        for table, columns in SCHEMAS.items()
        for column, spec in columns.items()
    ]
    return pd.DataFrame(rows)


def _kind_accepts(kind: str, arrow_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    is_text = pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    is_number = pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
    return {
        "id": is_text or pa.types.is_integer(arrow_type),
        "text": is_text,
        "bool": pa.types.is_boolean(arrow_type),
        "date": pa.types.is_date(arrow_type) or pa.types.is_timestamp(arrow_type),
        "value": is_text or is_number,
    }[kind]


_KIND_FIX = {
    "id": "store identifiers as integers or text",
    "text": "store text as UTF-8 strings (pandas str/object of str)",
    "bool": "store true/false as a boolean column (e.g. df[col].astype(bool))",
    "date": "store dates as a date or timestamp column (e.g. pd.to_datetime(df[col]))",
    "value": "store values as numbers or text",
}


def _examples(values: pd.Series, mask) -> list[tuple[int, object]]:
    chosen = values[mask].head(MAX_EXAMPLES)
    return list(zip(chosen.index.tolist(), chosen.tolist(), strict=True))


def _invalid_utf8_rows(column: pa.ChunkedArray, offset: int = 0) -> list[tuple[int, object]]:
    bad = []
    for chunk in column.chunks:
        raw = chunk.cast(pa.binary()) if not pa.types.is_binary(chunk.type) else chunk
        for index, value in enumerate(raw.to_pylist()):
            if value is None:
                continue
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                bad.append((offset + index, value[:40]))
        offset += len(chunk)
    return bad


def _check_utf8(file: str, name: str, column: pa.ChunkedArray, offset: int = 0) -> None:
    binary = pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)
    if not binary:
        try:
            column.validate(full=True)
            return
        except pa.ArrowInvalid:
            pass
    bad = _invalid_utf8_rows(column, offset)
    fix = ("decode the text to Unicode before writing (e.g. bytes.decode('latin-1') or the "
           "source's real encoding) and write it as a string column")
    if bad:
        raise ContractError(file, name, "text is not valid UTF-8", fix, bad, len(bad))
    raise ContractError(file, name, "holds raw bytes (binary), not text", fix,
                        [(offset + i, v[:40])
                         for i, v in enumerate(column.to_pylist()[:MAX_EXAMPLES])],
                        len(column))


def _open_table(directory: Path, table: str) -> pq.ParquetFile:
    """The table's Parquet file, opened (its schema and row count read, no data)."""
    file = f"{table}.parquet"
    path = directory / file
    if not path.exists():
        raise ContractError(
            file, None, f"missing in {directory}",
            f"write the {table} table as {path} (columns: {', '.join(SCHEMAS[table])}); an empty "
            "table is allowed for medications and labs",
        )
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise ContractError(file, None, f"cannot be read as Parquet ({error})",
                            f"rewrite {path} with pandas.DataFrame.to_parquet") from None


def _check_schema(table: str, parquet: pq.ParquetFile) -> None:
    """Required columns present and of an accepted type (binary text is checked with the data)."""
    file = f"{table}.parquet"
    schema, num_rows = parquet.schema_arrow, parquet.metadata.num_rows
    for name, spec in SCHEMAS[table].items():
        if name not in schema.names:
            if not spec.required:
                continue
            raise ContractError(
                file, name, f"required column is missing (the file has {schema.names})",
                f"add column {name!r}: {spec.meaning}",
            )
        column_type = schema.field(name).type
        if pa.types.is_binary(column_type) or pa.types.is_large_binary(column_type):
            continue  # _check_data says whether it is text in the wrong type or raw bytes
        if pa.types.is_null(column_type) and (num_rows == 0 or not spec.required):
            continue
        if not _kind_accepts(spec.kind, column_type):
            first = next(parquet.iter_batches(batch_size=MAX_EXAMPLES, columns=[name]), None)
            values = pd.Series([] if first is None else first.column(0).to_pylist(), dtype=object)
            raise ContractError(
                file, name, f"has type {column_type}, expected {spec.kind}",
                _KIND_FIX[spec.kind], _examples(values, values.index >= 0), num_rows,
            )


def _check_data(table: str, arrow: pa.Table, offset: int = 0) -> pd.DataFrame:
    """The rows of ``arrow`` as a DataFrame indexed by row number in the file (from ``offset``),
    after checking text encoding and missing values."""
    file = f"{table}.parquet"
    for name, spec in SCHEMAS[table].items():
        if name not in arrow.column_names:
            continue
        column = arrow.column(name)
        if spec.kind == "text" or pa.types.is_binary(column.type):
            _check_utf8(file, name, column, offset)
    frame = arrow.to_pandas()
    frame.index = pd.RangeIndex(offset, offset + len(frame))
    for name, spec in SCHEMAS[table].items():
        if spec.required and name in frame and frame[name].isna().any():
            missing = frame[name].isna()
            raise ContractError(file, name, "required column has missing values",
                                f"fill in {name} in every row or drop those rows at the source",
                                _examples(frame[name], missing), int(missing.sum()))
    return frame


def _read_table(directory: Path, table: str) -> pd.DataFrame:
    parquet = _open_table(directory, table)
    _check_schema(table, parquet)
    return _check_data(table, parquet.read())


@dataclass(frozen=True)
class TableFile:
    """A contract table left on disk (``load(..., lazy=...)``); read it with :func:`iter_batches`.

    Its columns and types are checked at load; its rows (text encoding, missing values, unknown
    course ids) batch by batch as they are read, with the same errors as an eager load.
    """

    name: str
    path: Path
    num_rows: int


def iter_batches(cohort: Cohort, table: str, columns: list[str] | None = None,
                 batch_rows: int = 65_536) -> Iterable[pd.DataFrame]:
    """The rows of a lazily loaded table, ``batch_rows`` at a time, each checked (see TableFile).

    Each DataFrame is indexed by row number in the file.
    """
    lazy = getattr(cohort, table)
    if not isinstance(lazy, TableFile):
        raise TypeError(f"{table} was loaded whole; load the cohort with lazy=[{table!r}]")
    parquet = pq.ParquetFile(lazy.path)
    known = pd.Index(cohort.courses["course_id"])
    offset = 0
    for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
        frame = _check_data(table, pa.Table.from_batches([batch]), offset)
        _check_known_courses(table, frame, known)
        offset += len(frame)
        yield frame


def _read_manifest(directory: Path) -> dict:
    path = directory / "manifest.json"
    if not path.exists():
        raise ContractError("manifest.json", None, f"missing in {directory}",
                            'write {"synthetic": false, "code_system": "who"} (or "cm") there')
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ContractError("manifest.json", None, f"is not valid JSON ({error})",
                            "rewrite it as a JSON object") from None
    if not isinstance(manifest, dict):
        raise ContractError("manifest.json", None, "is not a JSON object",
                            'write an object such as {"synthetic": false, "code_system": "who"}')
    if not isinstance(manifest.get("synthetic"), bool):
        raise ContractError("manifest.json", "synthetic",
                            f"must be true or false, got {manifest.get('synthetic')!r}",
                            'set "synthetic": false for real data, true for generated cohorts')
    if manifest.get("code_system") not in CODE_SYSTEMS:
        raise ContractError("manifest.json", "code_system",
                            f"must be one of {CODE_SYSTEMS}, got {manifest.get('code_system')!r}",
                            'set "code_system": "who" for WHO ICD-10, "cm" for ICD-10-CM')
    return manifest


def _check_unique_courses(courses: pd.DataFrame) -> None:
    duplicated = courses["course_id"].duplicated(keep=False)
    if duplicated.any():
        raise ContractError("courses.parquet", "course_id", "course_id is not unique",
                            "give every course exactly one row in courses.parquet",
                            _examples(courses["course_id"], duplicated), int(duplicated.sum()))


def _check_known_courses(table: str, frame: pd.DataFrame, course_ids: pd.Index) -> None:
    dangling = course_ids.get_indexer(frame["course_id"]) < 0
    if dangling.any():
        raise ContractError(
            f"{table}.parquet", "course_id", "course_id not found in courses.parquet",
            "add those courses to courses.parquet or remove their rows (check that both files "
            "use the same id type)", _examples(frame["course_id"], dangling), int(dangling.sum()),
        )


def _check_one_primary(table: str, frame: pd.DataFrame) -> None:
    primaries = frame.groupby("course_id", sort=False)["is_primary"].sum()
    wrong = primaries[primaries != 1]
    if len(wrong):
        affected = frame["course_id"].isin(wrong.index)
        examples = [(row, f"course {course}: {int(primaries[course])} primaries")
                    for row, course in _examples(frame["course_id"], affected)]
        raise ContractError(
            f"{table}.parquet", "is_primary",
            f"{len(wrong)} courses have zero or several primary codes (need exactly one)",
            "mark exactly one code per course with is_primary = true",
            examples, int(affected.sum()),
        )


def _check_evidence(truth: pd.DataFrame) -> None:
    unknown = ~truth["evidence"].isin(EVIDENCE_LEVELS)
    if unknown.any():
        raise ContractError("truth.parquet", "evidence", "unknown evidence value",
                            f"use one of {', '.join(EVIDENCE_LEVELS)}",
                            _examples(truth["evidence"], unknown), int(unknown.sum()))


def _check_vocabulary(file: str, frame: pd.DataFrame, column: str, allowed) -> None:
    unknown = ~frame[column].isin(list(allowed))
    if unknown.any():
        raise ContractError(file, column, f"unknown {column} value",
                            f"use one of {', '.join(allowed)}",
                            _examples(frame[column], unknown), int(unknown.sum()))


def load(directory: str | Path, lazy: Iterable[str] = ()) -> Cohort:
    """Read and validate a cohort directory; raise :class:`ContractError` on any problem.

    Tables named in ``lazy`` (e.g. ``notes``, the largest) stay on disk as :class:`TableFile`:
    their schema is checked now, their rows as :func:`iter_batches` reads them.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ContractError(str(directory), None, "is not a directory",
                            "pass the directory holding courses.parquet, notes.parquet, ...")
    manifest = _read_manifest(directory)
    lazy = set(lazy)
    tables = {}
    for table in REQUIRED_TABLES:
        if table in lazy and table != "courses":
            parquet = _open_table(directory, table)
            _check_schema(table, parquet)
            tables[table] = TableFile(table, directory / f"{table}.parquet",
                                      parquet.metadata.num_rows)
        else:
            tables[table] = _read_table(directory, table)
    if manifest["synthetic"] or (directory / "truth.parquet").exists():
        tables["truth"] = _read_table(directory, "truth")
    for table in OPTIONAL_TABLES:
        if (directory / f"{table}.parquet").exists():
            tables[table] = _read_table(directory, table)
    _check_unique_courses(tables["courses"])
    course_ids = pd.Index(tables["courses"]["course_id"])
    for table, frame in tables.items():
        if table != "courses" and not isinstance(frame, TableFile):
            _check_known_courses(table, frame, course_ids)
    _check_one_primary("codes", tables["codes"])
    if "truth" in tables:
        _check_one_primary("truth", tables["truth"])
        _check_evidence(tables["truth"])
    if "distractors" in tables:
        _check_vocabulary("distractors.parquet", tables["distractors"], "kind", DISTRACTOR_KINDS)
    if "coding" in tables:
        _check_vocabulary("coding.parquet", tables["coding"], "reason", CODING_REASONS)
    return Cohort(manifest=manifest, path=directory, **tables)


def write(directory: str | Path, tables: dict[str, pd.DataFrame], manifest: dict) -> Path:
    """Write contract tables and ``manifest.json`` atomically (the manifest last)."""
    directory = Path(directory)
    for table, frame in tables.items():
        if table not in SCHEMAS:
            raise ValueError(f"unknown table {table!r}; the contract has {list(SCHEMAS)}")
        write_parquet(directory / f"{table}.parquet", frame)
    write_json(directory / "manifest.json", manifest)
    return directory

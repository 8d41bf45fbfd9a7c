"""medcoding.cohort.contract: a valid cohort loads; every contract error names file, column,
rows, count and fix."""

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medcoding.cohort import contract
from medcoding.cohort.contract import ContractError


def small_tables() -> dict[str, pd.DataFrame]:
    return {
        "courses": pd.DataFrame({
            "course_id": [1, 2, 3],
            "patient_id": [10, 10, 11],
            "start_date": pd.to_datetime(["2010-01-01", "2011-05-02", "2012-03-04"]),
            "department": ["Cardiology A", "Nephrology", "Cardiology A"],
            "specialty": ["cardiology", "nephrology", "cardiology"],
        }),
        "notes": pd.DataFrame({"course_id": [1, 2, 3], "note_type": ["discharge_summary"] * 3,
                               "text": ["Heart failure.", "CKD stage 3.", "Hypertension."]}),
        "medications": pd.DataFrame({"course_id": [1], "drug": ["furosemide"]}),
        "labs": pd.DataFrame({"course_id": [2], "test": ["creatinine"], "value": [180.0],
                              "unit": ["umol/L"]}),
        "codes": pd.DataFrame({"course_id": [1, 1, 2, 3], "code": ["I50.0", "I10", "N18.3", "I10"],
                               "is_primary": [True, False, True, True]}),
        "truth": pd.DataFrame({"course_id": [1, 2, 3], "code": ["I50.0", "N18.3", "I10"],
                               "is_primary": [True, True, True],
                               "evidence": ["listed", "drug", "buried"]}),
    }


def write_cohort(path, tables=None, manifest=None):
    tables = small_tables() if tables is None else tables
    manifest = {"synthetic": True, "code_system": "who"} if manifest is None else manifest
    contract.write(path, tables, manifest)
    return path


def load_error(path) -> ContractError:
    with pytest.raises(ContractError) as caught:
        contract.load(path)
    return caught.value


def test_valid_cohort_loads(tmp_path):
    cohort = contract.load(write_cohort(tmp_path))
    assert cohort.synthetic and cohort.code_system == "who"
    assert len(cohort.courses) == 3 and len(cohort.codes) == 4 and len(cohort.truth) == 3
    assert cohort.distractors is None
    assert set(cohort.tables()) == {"courses", "notes", "medications", "labs", "codes", "truth"}


def test_schema_table_lists_every_column():
    table = contract.schema_table()
    assert len(table) == sum(len(columns) for columns in contract.SCHEMAS.values())
    optional = table[~table["required"]]
    assert set(optional["column"]) == {"inpatient", "atc", "unit"}


def test_missing_table(tmp_path):
    tables = small_tables()
    del tables["labs"]
    error = load_error(write_cohort(tmp_path, tables))
    assert error.file == "labs.parquet" and "missing" in str(error)
    assert "fix: write the labs table" in str(error)


def test_synthetic_cohort_needs_truth(tmp_path):
    tables = small_tables()
    del tables["truth"]
    assert "truth.parquet: missing" in str(load_error(write_cohort(tmp_path, tables)))
    write_cohort(tmp_path / "real", tables, {"synthetic": False, "code_system": "cm"})
    assert contract.load(tmp_path / "real").truth is None


def test_missing_manifest_and_bad_manifest(tmp_path):
    write_cohort(tmp_path)
    (tmp_path / "manifest.json").unlink()
    assert "manifest.json: missing" in str(load_error(tmp_path))
    (tmp_path / "manifest.json").write_text(json.dumps({"synthetic": "yes"}))
    error = load_error(tmp_path)
    assert error.column == "synthetic" and "must be true or false" in str(error)
    (tmp_path / "manifest.json").write_text(json.dumps({"synthetic": True, "code_system": "x"}))
    assert "code_system" in str(load_error(tmp_path))


def test_missing_column(tmp_path):
    tables = small_tables()
    tables["notes"] = tables["notes"].drop(columns="note_type")
    error = load_error(write_cohort(tmp_path, tables))
    message = str(error)
    assert "notes.parquet, column 'note_type': required column is missing" in message
    assert "fix: add column 'note_type'" in message


def test_wrong_type(tmp_path):
    tables = small_tables()
    tables["codes"]["is_primary"] = ["yes", "no", "yes", "yes"]
    error = load_error(write_cohort(tmp_path, tables))
    message = str(error)
    assert "codes.parquet, column 'is_primary': has type" in message and "expected bool" in message
    assert "(4 rows affected)" in message and "row 0: 'yes'" in message
    assert "fix: store true/false as a boolean column" in message


def test_date_stored_as_text_is_wrong_type(tmp_path):
    tables = small_tables()
    tables["courses"]["start_date"] = ["2010-01-01", "2011-05-02", "2012-03-04"]
    message = str(load_error(write_cohort(tmp_path, tables)))
    assert "column 'start_date'" in message and "pd.to_datetime" in message


def test_missing_values_in_required_column(tmp_path):
    tables = small_tables()
    tables["notes"]["text"] = ["a", None, "c"]
    message = str(load_error(write_cohort(tmp_path, tables)))
    assert "notes.parquet, column 'text': required column has missing values" in message
    assert "(1 row affected)" in message and "row 1" in message


def test_duplicate_course_id(tmp_path):
    tables = small_tables()
    tables["courses"].loc[2, "course_id"] = 2
    tables["codes"] = tables["codes"][tables["codes"]["course_id"] != 3]
    tables["notes"] = tables["notes"][tables["notes"]["course_id"] != 3]
    tables["truth"] = tables["truth"][tables["truth"]["course_id"] != 3]
    error = load_error(write_cohort(tmp_path, tables))
    message = str(error)
    assert "courses.parquet, column 'course_id': course_id is not unique" in message
    assert "(2 rows affected)" in message and "row 1: 2, row 2: 2" in message


def test_dangling_course_id(tmp_path):
    tables = small_tables()
    tables["labs"] = pd.DataFrame({"course_id": [2, 99, 98], "test": ["Hb"] * 3,
                                   "value": ["7.1", "low", "8"]})
    message = str(load_error(write_cohort(tmp_path, tables)))
    assert "labs.parquet, column 'course_id': course_id not found in courses.parquet" in message
    assert "(2 rows affected)" in message and "row 1: 99, row 2: 98" in message


def test_invalid_utf8_text(tmp_path):
    write_cohort(tmp_path)
    offsets = pa.py_buffer(pa.array([0, 3, 7, 9], type=pa.int32()).buffers()[1])
    data = pa.py_buffer(b"ok.caf\xe9ok")  # latin-1 "café" in row 1
    text = pa.Array.from_buffers(pa.string(), 3, [None, offsets, data])
    notes = pa.table({"course_id": [1, 2, 3], "note_type": ["discharge_summary"] * 3,
                      "text": text})
    pq.write_table(notes, tmp_path / "notes.parquet")
    message = str(load_error(tmp_path))
    assert "notes.parquet, column 'text': text is not valid UTF-8 (1 row affected)" in message
    assert "row 1: b'caf\\xe9'" in message and "latin-1" in message


def test_binary_text_column(tmp_path):
    tables = small_tables()
    tables["notes"]["text"] = [b"fine", b"caf\xe9", b"\xff\xfe"]
    message = str(load_error(write_cohort(tmp_path, tables)))
    assert "notes.parquet, column 'text': text is not valid UTF-8 (2 rows affected)" in message


def test_two_primaries_and_zero_primaries(tmp_path):
    tables = small_tables()
    tables["codes"]["is_primary"] = [True, True, False, True]  # course 1: two; course 2: none
    error = load_error(write_cohort(tmp_path, tables))
    message = str(error)
    assert "codes.parquet, column 'is_primary': 2 courses have zero or several" in message
    assert "(3 rows affected)" in message
    assert "course 1: 2 primaries" in message and "course 2: 0 primaries" in message


def test_unknown_evidence(tmp_path):
    tables = small_tables()
    tables["truth"]["evidence"] = ["listed", "obvious", "buried"]
    message = str(load_error(write_cohort(tmp_path, tables)))
    assert "truth.parquet, column 'evidence': unknown evidence value (1 row affected)" in message
    assert "row 1: 'obvious'" in message
    assert "primary, suspected, listed, narrative, buried" in message


def test_distractors_are_checked_when_present(tmp_path):
    tables = small_tables()
    tables["distractors"] = pd.DataFrame({"course_id": [1, 7], "code": ["I21", "E66"],
                                          "kind": ["negation", "family_history"]})
    message = str(load_error(write_cohort(tmp_path, tables)))
    assert "distractors.parquet, column 'course_id'" in message and "row 1: 7" in message

"""``medcoding describe``: hand-computed figures on a tiny cohort, a generated cohort checked
against direct pandas counts, streaming in batches and bad input."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medcoding import describe as d
from medcoding.cohort import contract
from medcoding.cohort.synthetic import generate

NOTES = [
    # course 13 (patient 1, 2010, age 30: born 1979 or 1980)
    (13, "discharge_summary", "Pulse 72 and regular.\n\nKnown type 2 DIABETES MELLITUS WITHOUT "
     "COMPLICATIONS since 2009.\nDiagnosed 1975 by the GP."),  # 1975: before birth
    (13, "progress_note", "Pulse 88  and regular.\nBP 120/80"),
    # course 11 (patient 1, 2011, age 31)
    (11, "discharge_summary", "Pulse 64 and regular.\nOperated in 2014; diuresis 2010 mL; "
     "seen 12.2011."),  # 2014: after the course; 2010 mL and 12.2011 are no years
    # course 12 (patient 1, 2012, age 32)
    (12, "discharge_summary", "Seen in 2012.\nType 2 diabetes."),
    # course 20 (patient 2, 2015, age 5)
    (20, "admission_note", "Brought in after an overdose."),
]


def tiny_tables() -> dict[str, pd.DataFrame]:
    courses = pd.DataFrame({
        "course_id": [13, 11, 12, 20], "patient_id": [1, 1, 1, 2],
        "start_date": pd.to_datetime(["2010-03-01", "2011-03-01", "2012-03-01", "2015-06-01"]),
        "department": ["med"] * 4, "specialty": ["internal", "internal", "surgery", "paeds"],
        "inpatient": [True] * 4, "age": [30, 31, 32, 5],
    })
    notes = pd.DataFrame(NOTES, columns=["course_id", "note_type", "text"])
    codes = pd.DataFrame({
        "course_id": [13, 13, 11, 12, 12, 20, 20],
        "code": ["E11.9", "DI10", "E11.9", "J18.9", "E11.9", "T39.1", "E66.9"],
        "is_primary": [True, False, True, True, False, True, False],
    })
    truth = pd.DataFrame({
        "course_id": [13, 13, 13, 11, 11, 12, 12, 12, 20, 20],
        "code": ["E11.9", "I10", "J18.9", "E11.9", "E78.0", "J18.9", "E11.9", "I10",
                 "T39.1", "X60"],
        "is_primary": [True, False, False, True, False, True, False, False, True, False],
        "evidence": ["primary", "listed", "drug", "primary", "drug", "primary",
                     "buried", "drug", "primary", "listed"],
    })
    empty = {"medications": pd.DataFrame({"course_id": pd.Series([], dtype="int64"),
                                          "drug": pd.Series([], dtype="str")}),
             "labs": pd.DataFrame({"course_id": pd.Series([], dtype="int64"),
                                   "test": pd.Series([], dtype="str"),
                                   "value": pd.Series([], dtype="float64")})}
    return {"courses": courses, "notes": notes, "codes": codes, "truth": truth, **empty}


@pytest.fixture
def tiny(tmp_path):
    directory = tmp_path / "tiny"
    contract.write(directory, tiny_tables(), {"synthetic": True, "code_system": "who"})
    pd.DataFrame({"course_id": [13, 12, 12], "code": ["I10", "E11.9", "I10"],
                  "truly_present": [True, True, True], "human_coded": [True, True, False],
                  "reason": ["coded_listed", "coded_buried", "missed_implied_only"]}).to_parquet(
        directory / "coding.parquet")
    return directory


def test_line_shapes_fold_digits_and_space_and_drop_blank_lines():
    texts = pa.array(["Pulse 72 and regular.\n\n  Pulse 88  and regular.\nBP 120/80",
                      "Pulse 64 and regular.\n"])
    shapes = d.line_shapes(texts)
    assert shapes == {"Pulse 00 and regular.": 3, "BP 000/00": 1}
    assert d.shape_coverage(shapes, top=1) == 0.75
    assert d.shape_coverage(shapes, top=2) == 1.0


def test_years_are_standalone_numbers_without_units():
    text = "In 2009, then 1975; 2010 mL, 2011mg, 12.2011, 20145, 2013/14 and (1999)."
    assert d.year_mentions(text) == [2009, 1975, 2013, 1999]


def test_word_types_are_lower_cased_letter_runs():
    assert d.word_types(pa.array(["Type 2 DM; type-2 dm", "Ærø æRØ x1y"])) == \
        {"type", "dm", "ærø", "x", "y"}


def test_persistence_on_a_three_course_patient():
    tables = tiny_tables()
    truth = d._normalised(tables["truth"], "who")
    pooled, table = d.persistence(tables["courses"], truth)
    # by date: 13 (E11, I10, J18) -> 11 (E11, E78) -> 12 (J18, E11, I10); J18 is not chronic,
    # course 12 is the last, patient 2 has one course. Pairs: 13 E11 -> 11 yes, 13 I10 -> 11
    # no, 11 E11 -> 12 yes, 11 E78 -> 12 no
    assert pooled == pytest.approx(2 / 4)
    assert table.set_index("category")["pairs"].to_dict() == {"E11": 2, "I10": 1, "E78": 1}
    assert table.set_index("category")["persists"].to_dict() == {"E11": 2, "I10": 0, "E78": 0}


def test_describe_tiny_cohort_by_hand(tiny):
    f = d.describe(tiny)
    assert (f["courses"], f["patients"], f["notes"]) == (4, 2, 5)
    assert f["courses_per_patient_mean"] == 2.0 and f["courses_per_patient_median"] == 2.0
    assert f["notes_per_course_median"] == 1.0 and f["courses_without_notes"] == 0
    chars = [len(text) for _, _, text in NOTES]
    assert f["note_chars_median"] == float(np.median(chars))
    assert f["course_chars_median"] == float(np.median([chars[0] + chars[1], chars[2],
                                                        chars[3], chars[4]]))
    words = [len(text.split()) for _, _, text in NOTES]
    assert f["note_words_mean"] == pytest.approx(np.mean(words))
    # lines: Pulse x3, the diabetes line, "Diagnosed 0000 by the GP.", BP, "Operated ...",
    # "Seen in 0000.", "Type 0 diabetes.", "Brought in ..." = 10 lines in 8 shapes
    assert (f["lines"], f["line_shapes"], f["shape_coverage"]) == (10, 8, 1.0)
    # years: 2009, 1975 (course 13, 1975 < 1979), 2014 (course 11, > 2011), 2012 (course 12)
    assert f["year_mentions_per_course"] == 4 / 4
    assert f["impossible_years_per_course"] == 2 / 4
    assert f["courses_with_impossible_year"] == 2
    # human codes: 13 {E11.9, I10}, 11 {E11.9}, 12 {J18.9, E11.9}, 20 {T39.1, E66.9}
    assert f["codes_per_course_median"] == 2.0 and f["codes_per_course_mean"] == 7 / 4
    assert f["priority_human"]["E66"] == {"courses": 1, "secondary_share": 1.0}
    assert f["priority_human"]["I10-I15"] == {"courses": 1, "secondary_share": 1.0}
    assert f["priority_truth"]["I10-I15"] == {"courses": 2, "secondary_share": 1.0}
    assert f["note_types_by_specialty"] == {
        "internal": {"discharge_summary": 2, "progress_note": 1},
        "paeds": {"admission_note": 1}, "surgery": {"discharge_summary": 1}}
    # only course 13 holds its primary's title ("Type 2 diabetes mellitus without complications")
    assert f["title_verbatim_share"] == 1 / 4
    assert f["persistence"] == pytest.approx(0.5)
    evidence = {row["evidence"]: (row["secondaries"], row["coded"])
                for row in f["coded_share_by_evidence"]}
    # secondaries: 13 I10 (coded) J18 (no); 11 E78 (no); 12 E11 (coded) I10 (no); 20 X60 (no)
    assert evidence == {"listed": (2, 1), "drug": (3, 0), "buried": (1, 1)}
    # implied 0/3 over named (listed + buried) 2/3
    assert f["implied_named_ratio"] == 0.0
    assert f["self_harm_under_10"] == 1
    assert f["true_codes_per_coded_course_mean"] == pytest.approx((3 + 2 + 3 + 2) / 4)
    assert {(r["reason"], r["human_coded"], r["rows"]) for r in f["coding_reasons"]} == {
        ("coded_listed", True, 1), ("coded_buried", True, 1), ("missed_implied_only", False, 1)}
    assert f["top_line_shapes"][0] == ["Pulse 00 and regular.", 3]


def test_batches_give_the_same_figures(tiny):
    whole = d.describe(tiny)
    assert d.describe(tiny, batch_notes=2) == whole


def test_report_of_a_cohort_not_known_to_be_synthetic_shows_no_text(tmp_path, capsys):
    tables = tiny_tables()
    del tables["truth"]
    directory = contract.write(tmp_path / "real", tables,
                               {"synthetic": False, "code_system": "who"})
    assert d.main([str(directory), "--json", str(tmp_path / "f.json")]) == 0
    out = capsys.readouterr().out
    assert "not known to be synthetic" in out and "word types 2" in out
    for _, _, text in NOTES:
        for line in text.split("\n"):
            assert not line.strip() or line.strip() not in out
    figures = json.loads((tmp_path / "f.json").read_text())
    assert "top_line_shapes" not in figures and "persistence" not in figures
    assert figures["courses"] == 4


def test_bad_note_text_is_refused_with_file_column_and_rows(tmp_path, capsys):
    tables = tiny_tables()
    directory = contract.write(tmp_path / "bad", tables, {"synthetic": True, "code_system": "who"})
    notes = pa.table({"course_id": [13, 11], "note_type": ["a", "b"],
                      "text": pa.array([b"fine", b"caf\xe9"], pa.binary()).cast(
                          pa.string(), safe=False)})
    pq.write_table(notes, directory / "notes.parquet")
    assert d.main([str(directory)]) == 2
    err = capsys.readouterr().err
    assert "notes.parquet, column 'text': text is not valid UTF-8 in rows 0-1" in err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    directory = tmp_path_factory.mktemp("describe") / "data"
    generate(400, 11, directory, progress=False)
    return directory


def test_generated_cohort_figures_match_direct_counts(generated):
    f = d.describe(generated, batch_notes=3000)
    cohort = contract.load(generated)
    notes, courses = cohort.notes, cohort.courses
    assert f["courses"] == len(courses) and f["notes"] == len(notes)
    assert f["patients"] == courses["patient_id"].nunique()
    words = {w for text in notes["text"] for w in re.findall(r"[^\W\d_]+", text.lower())}
    assert f["word_types"] == len(words)
    lines = [re.sub(r"\s+", " ", re.sub(r"\d", "0", line)).strip()
             for text in notes["text"] for line in text.split("\n")]
    shapes = Counter(line for line in lines if line)
    assert f["lines"] == sum(shapes.values()) and f["line_shapes"] == len(shapes)
    assert f["shape_coverage"] == pytest.approx(
        sum(n for _, n in shapes.most_common(100)) / sum(shapes.values()))
    course_text = notes.groupby("course_id")["text"].agg("\n".join).str.lower()
    primary = cohort.truth[cohort.truth["is_primary"]].set_index("course_id")["code"]
    from medcoding import icd10

    found = [icd10.title(code).lower() in course_text.get(course, "")
             for course, code in primary.items()]
    assert f["title_verbatim_share"] == pytest.approx(np.mean(found))
    by_course = courses.set_index("course_id")
    latest = pd.to_datetime(by_course["start_date"]).dt.year
    earliest = latest - by_course["age"] - 1
    impossible = sum(
        sum(year > latest[course] or year < earliest[course] for year in d.year_mentions(text))
        for course, text in zip(notes["course_id"], notes["text"], strict=True))
    assert f["impossible_years_per_course"] * len(courses) == pytest.approx(impossible)
    assert f["year_mentions_per_course"] > 0  # years are mentioned (v2 writes none impossible)
    assert 0 <= f["persistence"] <= 1 and f["self_harm_under_10"] >= 0
    assert set(f["note_types_by_specialty"]) == set(courses["specialty"])


def test_figures_are_json_ready(generated, tmp_path):
    assert d.main([str(generated), "--json", str(tmp_path / "f.json")]) == 0
    figures = json.loads((tmp_path / "f.json").read_text())
    assert figures["courses"] > 0 and isinstance(figures["persistence_by_category"], list)

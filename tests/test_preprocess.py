"""medcoding.cohort.preprocess on a hand-built cohort where every filter removes known courses."""

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from medcoding.cli import main as cli_main
from medcoding.cohort import contract
from medcoding.cohort.preprocess import (
    DEFAULTS_FILE,
    FLOW_COLUMNS,
    PrepareConfig,
    PrepareError,
    PrepareWarning,
    _join_groups,
    _Pieces,
    prepare,
    split_patients,
)

ORDERED_TEXT = ("D.\n\nD2.\n\nA.\n\nP.\n\nB.\n\nN.\n\nMedications:\n- metformin\n- furosemide"
                "\n\nLab results:\n- HbA1c: 48 mmol/mol\n- urine ketones: negative")


class CohortBuilder:
    def __init__(self):
        self.courses, self.notes, self.codes, self.truth = [], [], [], []
        self.medications, self.labs, self.distractors = [], [], []

    def add(self, course_id, patient_id, codes, note_types=("discharge_summary",), text="Note.",
            specialty="cardiology"):
        self.courses.append({"course_id": course_id, "patient_id": patient_id,
                             "start_date": pd.Timestamp("2012-01-01"),
                             "department": f"{specialty} A", "specialty": specialty,
                             "inpatient": True})
        for note_type in note_types:
            self.notes.append({"course_id": course_id, "note_type": note_type, "text": text})
        for position, code in enumerate(codes):
            self.codes.append({"course_id": course_id, "code": code, "is_primary": position == 0})
        self.truth.append({"course_id": course_id, "code": "I10", "is_primary": True,
                           "evidence": "listed"})

    def write(self, path):
        tables = {name: pd.DataFrame(getattr(self, name)) for name in
                  ("courses", "notes", "codes", "truth", "distractors")}
        tables["medications"] = pd.DataFrame(self.medications, columns=["course_id", "drug"])
        tables["labs"] = pd.DataFrame(self.labs, columns=["course_id", "test", "value", "unit"])
        contract.write(path, tables, {"synthetic": True, "code_system": "who"})
        return path


def build_cohort(path):
    """58 courses of 37 patients; steps 1-7 remove 3, 2, 2, 2, 3, 2, 2 courses."""
    cohort = CohortBuilder()
    for index in range(40):  # good courses: patients 0-19, two courses each
        codes = ["I10"] + (["E66.0"] if index < 10 else [])  # E66 in exactly 10 courses: stays
        cohort.add(f"g{index:02d}", index // 2, codes)
    cohort.codes += [{"course_id": "g00", "code": "DI10", "is_primary": False},
                     {"course_id": "g00", "code": "E66.9", "is_primary": False}]
    cohort.truth += [{"course_id": "g00", "code": "E66.0", "is_primary": False,
                      "evidence": "undocumented"},
                     {"course_id": "g00", "code": "E11.9", "is_primary": False,
                      "evidence": "drug"}]
    cohort.distractors += [{"course_id": "g02", "code": "I50.0", "kind": "negated"},
                           {"course_id": "g02", "code": "I50.9", "kind": "negated"},
                           {"course_id": "g02", "code": "E66", "kind": "family_history"}]
    cohort.notes = [n for n in cohort.notes if n["course_id"] != "g01"]
    for note_type, text in [("progress_note", "P."), ("nursing_note", "N."),
                            ("discharge_summary", "D."), ("admission_note", "A."),
                            ("ambulance_note", "B."), ("discharge_summary", "D2.")]:
        cohort.notes.append({"course_id": "g01", "note_type": note_type, "text": text})
    cohort.medications += [{"course_id": "g01", "drug": "metformin"},
                           {"course_id": "g01", "drug": "furosemide"},
                           {"course_id": "l1", "drug": "furosemide"}]
    cohort.labs += [{"course_id": "g01", "test": "HbA1c", "value": "48", "unit": "mmol/mol"},
                    {"course_id": "g01", "test": "urine ketones", "value": "negative",
                     "unit": None}]
    for number in range(3):  # (1) no codes
        cohort.add(f"n{number}", 100 + number, [])
    cohort.add("d1", 103, ["I10"], note_types=("progress_note",))  # (2) no discharge summary
    cohort.add("d2", 104, ["I10"], note_types=())
    cohort.add("z1", 105, ["Z00.0", "Z23"])  # (3) only Z codes
    cohort.add("z2", 106, ["Z23"])
    cohort.add("i1", 107, ["I10", "E66.00"])  # (4) not in WHO ICD-10 / not a code
    cohort.add("i2", 108, ["XYZ"])
    cohort.add("r1", 109, ["I10", "J45.0", "J45.9"])  # (5) J45 in 2 courses, K35 in 1
    cohort.add("r2", 110, ["I10", "J45.9"])
    cohort.add("r3", 111, ["I10", "K35.8"])
    cohort.add("l1", 112, ["I10"], text="x" * 9_990)  # (6) 9,990 + medications > 10,000
    cohort.add("l2", 113, ["I10"], text="x" * 10_000)  # exactly 10,000: stays
    cohort.add("l3", 114, ["I10"], text="x" * 10_001)
    cohort.add("p1", 0, ["I10"], specialty="adult_psychiatry")  # (7) patient 0 keeps g00, g01
    cohort.add("p2", 115, ["I10"], specialty="adult_psychiatry")
    cohort.add("c1", 116, ["I10"], specialty="child_and_adolescent_psychiatry")
    return cohort.write(path)


SMALL_SPLIT = PrepareConfig(val_size=3, test_size=4, seed=7)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepare")
    result = prepare(build_cohort(root / "data"), root / "prepared", SMALL_SPLIT)
    splits = {name: pd.read_parquet(root / "prepared" / f"{name}.parquet")
              for name in ("train", "val", "test")}
    return root / "prepared", result, splits


def test_flow_counts_each_filter(prepared):
    out, result, _ = prepared
    flow = pd.read_csv(out / "flow.csv")
    assert list(flow.columns) == FLOW_COLUMNS
    assert flow["name"].tolist() == ["no_codes", "no_discharge_summary", "only_z_codes",
                                     "invalid_codes", "rare_categories", "long_text",
                                     "specialties", "no_note_text"]
    assert flow["courses_before"].tolist() == [58, 55, 53, 51, 49, 46, 44, 42]
    assert flow["courses_removed"].tolist() == [3, 2, 2, 2, 3, 2, 2, 0]
    assert flow["courses_after"].tolist() == [55, 53, 51, 49, 46, 44, 42, 42]
    assert flow["patients_before"].tolist() == [37, 34, 32, 30, 28, 25, 23, 22]
    assert flow["patients_removed"].tolist() == [3, 2, 2, 2, 3, 2, 1, 0]
    assert flow["patients_after"].tolist() == [34, 32, 30, 28, 25, 23, 22, 22]
    assert flow["enabled"].all()
    assert result.flow.equals(flow)


def test_kept_courses_and_split_sizes(prepared):
    out, result, splits = prepared
    everything = pd.concat(splits.values())
    expected = {f"g{i:02d}" for i in range(40)} | {"l2", "c1"}
    assert set(everything["course_id"]) == expected and len(everything) == 42
    patients = {name: set(frame["patient_id"]) for name, frame in splits.items()}
    assert [len(patients[name]) for name in ("train", "val", "test")] == [15, 3, 4]
    assert not (patients["train"] & patients["val"] or patients["train"] & patients["test"]
                or patients["val"] & patients["test"])
    assert result.counts["train"]["patients"] == 15
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["test_size"] == 4 and manifest["input_manifest"]["synthetic"]
    assert manifest["counts"]["val"]["patients"] == 3


def test_output_columns(prepared):
    _, _, splits = prepared
    assert list(splits["train"].columns) == [
        "course_id", "patient_id", "specialty", "department", "inpatient", "text", "codes_full",
        "codes_l3", "primary_l3", "primary_full", "true_full", "true_evidence", "true_l3",
        "true_primary_full", "distractor_l3", "distractor_kind", "patient_rank"]


def test_codes_deduplicated_primary_first(prepared):
    _, _, splits = prepared
    rows = pd.concat(splits.values()).set_index("course_id")
    g00 = rows.loc["g00"]
    assert list(g00["codes_full"]) == ["I10", "E66.0", "E66.9"]
    assert list(g00["codes_l3"]) == ["I10", "E66"]
    assert (g00["primary_l3"], g00["primary_full"]) == ("I10", "I10")
    assert list(g00["true_full"]) == ["I10", "E11.9", "E66.0"]
    assert list(g00["true_evidence"]) == ["listed", "drug", "undocumented"]
    assert list(g00["true_l3"]) == ["I10", "E11", "E66"] and g00["true_primary_full"] == "I10"
    assert list(rows.loc["g02", "distractor_l3"]) == ["E66", "I50"]
    assert list(rows.loc["g02", "distractor_kind"]) == ["family_history", "negated"]
    assert list(rows.loc["g03", "distractor_l3"]) == []


def test_text_order_and_sections(prepared):
    _, _, splits = prepared
    rows = pd.concat(splits.values()).set_index("course_id")
    assert rows.loc["g01", "text"] == ORDERED_TEXT
    assert rows.loc["g05", "text"] == "Note."
    assert len(rows.loc["l2", "text"]) == 10_000


def test_nested_training_subsets(prepared):
    _, _, splits = prepared
    train = splits["train"]
    ranks = train.groupby("patient_id")["patient_rank"].agg(["nunique", "first"])
    assert (ranks["nunique"] == 1).all()
    assert sorted(ranks["first"]) == list(range(15))
    subsets = [set(train.loc[train["patient_rank"] < n, "patient_id"]) for n in (5, 10, 15)]
    assert [len(s) for s in subsets] == [5, 10, 15]
    assert subsets[0] < subsets[1] < subsets[2]
    assert train["patient_rank"].is_monotonic_increasing


def test_labels_are_training_codes(prepared):
    out, _, splits = prepared
    labels = json.loads((out / "labels.json").read_text())
    train = splits["train"]
    assert labels["l3"] == sorted({c for codes in train["codes_l3"] for c in codes})
    assert labels["full"] == sorted({c for codes in train["codes_full"] for c in codes})
    assert set(labels["l3"]) <= {"I10", "E66"} and "I10" in labels["l3"]


def test_split_is_seeded_and_fraction_sizes():
    patients = pd.Series(range(100)).repeat(2)
    first = split_patients(patients, 0.1, 0.2, seed=3)
    assert first.equals(split_patients(patients.sample(frac=1, random_state=1), 0.1, 0.2, 3))
    assert not first.equals(split_patients(patients, 0.1, 0.2, seed=4))
    assert first["split"].value_counts().to_dict() == {"train": 70, "test": 20, "val": 10}
    with pytest.raises(ValueError, match="leaving none for training"):
        split_patients(patients, 50, 50, seed=0)


def test_filters_can_be_switched_off(tmp_path):
    config = PrepareConfig(drop_no_codes=False, drop_no_discharge_summary=False,
                           drop_only_z_codes=False, drop_invalid_codes=False,
                           min_category_count=0, max_text_chars=None, drop_specialties=(),
                           drop_no_note_text=False, val_size=0, test_size=0)
    with pytest.warns(PrepareWarning, match=r"1 of 58 courses left have no note text .* kept"):
        result = prepare(build_cohort(tmp_path / "data"), tmp_path / "out", config)
    assert result.flow["courses_removed"].sum() == 0 and not result.flow["enabled"].any()
    train = pd.read_parquet(tmp_path / "out" / "train.parquet").set_index("course_id")
    assert len(train) == 58
    assert list(train.loc["n0", "codes_full"]) == [] and pd.isna(train.loc["n0", "primary_full"])
    assert train.loc["d2", "text"] == "" and list(train.loc["i2", "codes_l3"]) == ["XYZ"]


def test_defaults_file_matches_dataclass():
    assert PrepareConfig.from_yaml(DEFAULTS_FILE) == PrepareConfig()


def test_config_from_yaml_and_unknown_keys(tmp_path):
    path = tmp_path / "prepare.yaml"
    path.write_text(yaml.safe_dump({"min_category_count": 3, "drop_specialties": [],
                                    "test_size": 5}))
    config = PrepareConfig.from_yaml(path)
    assert config.min_category_count == 3 and config.drop_specialties == ()
    assert config.test_size == 5 and config.max_text_chars == 10_000
    path.write_text("min_count: 3\n")
    with pytest.raises(ValueError, match=r"prepare.yaml: unknown key 'min_count'; fix: did you "
                                         r"mean 'min_category_count'\?"):
        PrepareConfig.from_yaml(path)
    path.write_text("min_category_count: -1\n")
    with pytest.raises(ValueError, match=r"prepare.yaml: min_category_count = -1: input should "
                                         r"be greater than or equal to 0; fix: change"):
        PrepareConfig.from_yaml(path)
    path.write_text("drop_no_codes: 'no'\n")  # a quoted string, not YAML's boolean
    with pytest.raises(ValueError, match="drop_no_codes = 'no': input should be a valid boolean"):
        PrepareConfig.from_yaml(path)
    path.write_text("drop_specialties: [1, 2]\n")
    with pytest.raises(ValueError, match=r"drop_specialties = \(1, 2\): \[0\]: input should be "
                                         "a valid string"):
        PrepareConfig.from_yaml(path)
    with pytest.raises(ValueError, match="PrepareConfig: test_size = -0.5"):
        PrepareConfig(test_size=-0.5)


def test_cli_with_config(tmp_path, capsys):
    data = build_cohort(tmp_path / "data")
    config = tmp_path / "prepare.yaml"
    config.write_text("min_category_count: 3\ndrop_specialties: []\nval_size: 2\ntest_size: 2\n")
    out = tmp_path / "prepared"
    assert cli_main(["prepare", "--data", str(data), "--out", str(out), "--config",
                     str(config)]) == 0
    flow = pd.read_csv(out / "flow.csv")
    # min count 3: only K35 (1 course) is rare; J45 (2 courses) too -> 3 removed; no step 7
    assert flow["courses_removed"].tolist() == [3, 2, 2, 2, 3, 2, 0, 0]
    assert "rare_categories" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"train.parquet", "val.parquet", "test.parquet",
                                              "labels.json", "flow.csv", "manifest.json"}


def test_join_groups_across_chunks_and_blocks_matches_plain_python():
    rng = np.random.default_rng(0)
    group = rng.integers(-1, 7, 60)  # -1: not wanted
    order = rng.integers(0, 3, 60)
    words = [f"w{i}" for i in range(60)]
    chunks = pa.chunked_array([pa.array(words[:25], pa.large_string()),
                               pa.array(words[25:], pa.large_string())])
    groups, joined = _join_groups([_Pieces(group, order, chunks)], "|", groups_per_block=2)
    expected = {}
    for row in sorted(range(60), key=lambda r: (group[r], order[r], r)):
        if group[row] >= 0:
            expected.setdefault(int(group[row]), []).append(words[row])
    assert groups.tolist() == sorted(expected)
    assert joined.to_pylist() == ["|".join(expected[g]) for g in sorted(expected)]
    assert joined.num_chunks == 4  # 7 groups in blocks of 2


def test_single_name_in_yaml_list_field(tmp_path):
    path = tmp_path / "prepare.yaml"
    path.write_text("drop_specialties: adult_psychiatry\n")
    assert PrepareConfig.from_yaml(path).drop_specialties == ("adult_psychiatry",)


# Streaming, bad input and the faults of issue 12 (items 6, 8, 9, 10)


def test_small_batches_write_the_same_splits_in_several_row_groups(prepared, tmp_path):
    import pyarrow.parquet as pq

    from medcoding.cohort.preprocess import scan_texts

    out, _, splits = prepared
    data = out.parent / "data"
    prepare(data, tmp_path / "batched", SMALL_SPLIT, batch_courses=4, batch_rows=5)
    for name, frame in splits.items():
        batched = pd.read_parquet(tmp_path / "batched" / f"{name}.parquet")
        pd.testing.assert_frame_equal(batched, frame)
        row_groups = pq.ParquetFile(tmp_path / "batched" / f"{name}.parquet").num_row_groups
        assert row_groups == -(-len(frame) // 4)  # one per batch of 4 courses
    assert sorted(p.name for p in (tmp_path / "batched").iterdir()) == [
        "flow.csv", "labels.json", "manifest.json", "test.parquet", "train.parquet",
        "val.parquet"]  # the routed pieces are gone
    # the lengths the long_text filter uses are the lengths of the texts written
    cohort = contract.load(data, lazy=("notes", "medications", "labs"))
    courses = pd.Index(cohort.courses["course_id"])
    stats = scan_texts(cohort, courses, SMALL_SPLIT, batch_rows=3)
    for frame in splits.values():
        where = courses.get_indexer(frame["course_id"])
        assert stats.chars[where].tolist() == frame["text"].str.len().tolist()


def test_out_equal_to_data_is_refused(tmp_path, capsys):
    data = build_cohort(tmp_path / "data")
    manifest = (data / "manifest.json").read_text()
    with pytest.raises(PrepareError, match="is the cohort directory"):
        prepare(data, tmp_path / "data" / ".." / "data")
    assert cli_main(["prepare", "--data", str(data), "--out", str(data)]) == 1
    assert "overwrite its manifest.json" in capsys.readouterr().err
    assert (data / "manifest.json").read_text() == manifest
    assert sorted(p.name for p in data.iterdir()) == sorted(
        ["courses.parquet", "notes.parquet", "medications.parquet", "labs.parquet",
         "codes.parquet", "truth.parquet", "distractors.parquet", "manifest.json"])


def _rewrite(data, table, frame):
    frame.to_parquet(data / f"{table}.parquet", index=False)


@pytest.mark.parametrize("emptied, filter_name", [("codes", "filter 1 (no_codes)"),
                                                 ("notes", "filter 2 (no_discharge_summary)"),
                                                 ("courses", "courses.parquet has no rows")])
def test_empty_tables_name_what_removed_everything(tmp_path, capsys, emptied, filter_name):
    data = build_cohort(tmp_path / "data")
    tables = {"codes": ["truth", "codes"], "notes": ["notes"],
              "courses": ["truth", "distractors", "codes", "notes", "medications", "labs",
                          "courses"]}[emptied]
    for table in tables:
        _rewrite(data, table, pd.read_parquet(data / f"{table}.parquet").iloc[:0])
    with pytest.raises(PrepareError, match=re.escape(filter_name)) as error:
        prepare(data, tmp_path / "out")
    assert "courses_before" in str(error.value)  # the flow table is shown
    assert cli_main(["prepare", "--data", str(data), "--out", str(tmp_path / "out2")]) == 1
    assert filter_name in capsys.readouterr().err


def test_filters_that_leave_nothing_or_too_few_patients(tmp_path):
    data = build_cohort(tmp_path / "data")
    with pytest.raises(PrepareError, match=r"filter 5 \(rare_categories\) removed the last 49 "
                                           r"courses(.|\n)*min_category_count"):
        prepare(data, tmp_path / "out", PrepareConfig(min_category_count=100))
    with pytest.raises(PrepareError, match=r"leaving none for training(.|\n)*no_note_text"):
        prepare(data, tmp_path / "out", PrepareConfig(val_size=10, test_size=12))
    assert not (tmp_path / "out").exists()


def test_all_notes_empty_warns_and_counts_them(tmp_path):
    data = build_cohort(tmp_path / "data")
    notes = pd.read_parquet(data / "notes.parquet")
    _rewrite(data, "notes", notes.assign(text=""))
    with pytest.warns(PrepareWarning, match="44 of 44 courses left have no note text"), \
            pytest.raises(PrepareError, match=r"filter 8 \(no_note_text\) removed the last 44"):
        prepare(data, tmp_path / "out", SMALL_SPLIT)
    keep = dataclasses.replace(SMALL_SPLIT, drop_no_note_text=False)
    with pytest.warns(PrepareWarning, match="they are kept"):
        result = prepare(data, tmp_path / "out", keep)
    assert result.flow.iloc[-1][["name", "enabled", "courses_removed"]].tolist() == [
        "no_note_text", False, 0]
    train = pd.read_parquet(tmp_path / "out" / "train.parquet").set_index("course_id")
    assert train.loc["g01", "text"].startswith("\n\n\n\n")  # six empty notes, then the drugs
    assert "Medications:\n- metformin" in train.loc["g01", "text"]


def test_many_invalid_codes_suggest_the_code_system_may_be_wrong(tmp_path, recwarn):
    data = build_cohort(tmp_path / "data")
    prepare(data, tmp_path / "ok", SMALL_SPLIT)
    assert not [w for w in recwarn if issubclass(w.category, PrepareWarning)]  # 2 of 87 codes
    codes = pd.read_parquet(data / "codes.parquet")
    codes.loc[codes.index[codes["code"].eq("E66.0")], "code"] = "E66.01"  # 10 courses: CM only
    _rewrite(data, "codes", codes)
    with pytest.warns(PrepareWarning, match=r'\d+% of the codes .* not defined in WHO ICD-10'
                                            r'(.|\n)*"code_system": "who"\) may be wrong: in '
                                            r'ICD-10-CM only \d+% would be invalid'):
        prepare(data, tmp_path / "hint", SMALL_SPLIT)

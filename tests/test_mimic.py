"""medcoding.cohort.mimic on a tiny fixture written in the published MIMIC-IV CSV layouts."""

import pandas as pd
import pytest

from medcoding.cli import main as cli_main
from medcoding.cohort import contract, mimic

ADMISSIONS = ["subject_id", "hadm_id", "admittime", "dischtime", "deathtime", "admission_type",
              "admit_provider_id", "admission_location", "discharge_location", "insurance",
              "language", "marital_status", "race", "edregtime", "edouttime",
              "hospital_expire_flag"]
PRESCRIPTIONS = ["subject_id", "hadm_id", "pharmacy_id", "poe_id", "poe_seq",
                 "order_provider_id", "starttime", "stoptime", "drug_type", "drug",
                 "formulary_drug_cd", "gsn", "ndc", "prod_strength", "form_rx", "dose_val_rx",
                 "dose_unit_rx", "form_val_disp", "form_unit_disp", "doses_per_24_hrs", "route"]
LABEVENTS = ["labevent_id", "subject_id", "hadm_id", "specimen_id", "itemid",
             "order_provider_id", "charttime", "storetime", "value", "valuenum", "valueuom",
             "ref_range_lower", "ref_range_upper", "flag", "priority", "comments"]


def frame(columns, rows):
    return pd.DataFrame([dict(zip(columns, row, strict=False)) for row in rows], columns=columns)


def write_fixture(root, with_optional=True):
    hosp, note = root / "hosp", root / "note"
    hosp.mkdir(parents=True)
    note.mkdir()
    # admissions 101-104 (patient 1: 101, 102; patient 2: 103; patient 3: 104 ICD-9; 105 none)
    frame(ADMISSIONS, [
        (1, 101, "2150-01-02 10:00:00", "2150-01-05 12:00:00", None, "EW EMER."),
        (1, 102, "2151-03-04 08:00:00", "2151-03-06 09:00:00", None, "EU OBSERVATION"),
        (2, 103, "2160-07-08 07:30:00", "2160-07-10 10:00:00", None, "URGENT"),
        (3, 104, "2140-02-02 02:00:00", "2140-02-03 02:00:00", None, "ELECTIVE"),
        (4, 105, "2170-05-05 05:00:00", "2170-05-06 05:00:00", None, "ELECTIVE"),
    ]).to_csv(hosp / "admissions.csv.gz", index=False)
    frame(["subject_id", "hadm_id", "seq_num", "icd_code", "icd_version"], [
        (1, 101, 2, "I10", 10), (1, 101, 1, "I5023", 10), (1, 101, 3, "E6601", 10),
        (1, 102, 1, "N179", 10),
        (2, 103, 2, "F329", 10), (2, 103, 3, "Z9181", 10),  # no seq_num 1
        (3, 104, 1, "4280", 9), (3, 104, 2, "4019", 9),
        (9, 999, 1, "I10", 10),  # admission not in admissions
    ]).to_csv(hosp / "diagnoses_icd.csv.gz", index=False)
    frame(["subject_id", "hadm_id", "transfertime", "prev_service", "curr_service"], [
        (1, 101, "2150-01-03 00:00:00", "CMED", "MED"), (1, 101, "2150-01-02 10:00:00", None,
                                                          "CMED"),
        (2, 103, "2160-07-08 07:30:00", None, "PSYCH"), (3, 104, "2140-02-02 02:00:00", None,
                                                         "MED"),
        (4, 105, "2170-05-05 05:00:00", None, "XYZ"),
    ]).to_csv(hosp / "services.csv.gz", index=False)
    frame(["note_id", "subject_id", "hadm_id", "note_type", "note_seq", "charttime", "storetime",
           "text"], [
        ("1-DS-2", 1, 101, "AD", 2, "2150-01-05", "2150-01-05", "Addendum: BMI 41."),
        ("1-DS-1", 1, 101, "DS", 1, "2150-01-05", "2150-01-05", "Heart failure, HTN."),
        ("2-DS-1", 2, 103, "DS", 1, "2160-07-10", "2160-07-10", "Depression."),
        ("3-DS-1", 3, 104, "DS", 1, "2140-02-03", "2140-02-03", "ICD-9 era note."),
    ]).to_csv(note / "discharge.csv.gz", index=False)
    if with_optional:
        frame(PRESCRIPTIONS, [
            (1, 101, 11, None, None, None, None, None, "MAIN", "Furosemide"),
            (1, None, 12, None, None, None, None, None, "MAIN", "Aspirin"),
            (3, 104, 13, None, None, None, None, None, "MAIN", "Digoxin"),
        ]).to_csv(hosp / "prescriptions.csv.gz", index=False)
        frame(LABEVENTS, [
            (1, 1, 101, 1, 50912, None, None, None, "1.4", 1.4, "mg/dL"),
            (2, 1, 101, 1, 51466, None, None, None, "NEG", None, None),
            (3, 1, None, 1, 50912, None, None, None, "0.9", 0.9, "mg/dL"),
            (4, 2, 103, 1, 50912, None, None, None, None, None, "mg/dL"),
        ]).to_csv(hosp / "labevents.csv.gz", index=False)
        frame(["itemid", "label", "fluid", "category"], [
            (50912, "Creatinine", "Blood", "Chemistry"), (51466, "Blood", "Urine", "Hematology"),
        ]).to_csv(hosp / "d_labitems.csv.gz", index=False)
    return root


def test_import_mimic_fixture(tmp_path):
    manifest = mimic.import_mimic(write_fixture(tmp_path / "mimic"), tmp_path / "out")
    cohort = contract.load(tmp_path / "out")
    assert not cohort.synthetic and cohort.code_system == "cm"
    assert manifest["flow"] == {
        "admissions": 5, "admissions_without_service": 1, "diagnosis_rows": 9,
        "diagnosis_rows_unknown_admission": 1, "admissions_icd9": 1,
        "diagnosis_rows_icd9_admissions": 2, "admissions_primary_not_seq_num_1": 1,
        "courses": 4, "courses_without_diagnoses": 1, "code_rows": 6,
        "note_rows": 4, "note_rows_dropped_admission": 1,
        "prescription_rows": 3, "prescription_rows_dropped": 2,
        "lab_rows": 4, "lab_rows_dropped": 2,
    }
    courses = cohort.courses.set_index("course_id")
    assert courses.index.tolist() == [101, 102, 103, 105]
    assert courses.loc[101, ["patient_id", "department", "specialty"]].tolist() == [
        1, "CMED", "cardiology"]
    assert courses.loc[103, "specialty"] == "adult_psychiatry"
    assert courses.loc[102, "department"] == "unknown" and not courses.loc[102, "inpatient"]
    assert courses.loc[105, "specialty"] == "xyz" and courses.loc[101, "inpatient"]
    assert str(courses.loc[101, "start_date"].date()) == "2150-01-02"
    codes = cohort.codes
    assert codes[codes["course_id"] == 101]["code"].tolist() == ["I50.23", "I10", "E66.01"]
    primaries = codes[codes["is_primary"]].set_index("course_id")["code"].to_dict()
    assert primaries == {101: "I50.23", 102: "N17.9", 103: "F32.9"}
    notes = cohort.notes
    assert notes["note_type"].tolist() == ["discharge_summary", "discharge_addendum",
                                           "discharge_summary"]
    assert cohort.medications.to_dict("list") == {"course_id": [101], "drug": ["Furosemide"]}
    labs = cohort.labs
    assert labs["test"].tolist() == ["Creatinine", "Blood"]
    assert labs["value"].tolist() == ["1.4", "NEG"] and labs["unit"].isna().tolist() == [
        False, True]


def test_optional_tables_may_be_absent(tmp_path):
    mimic.import_mimic(write_fixture(tmp_path / "mimic", with_optional=False), tmp_path / "out")
    cohort = contract.load(tmp_path / "out")
    assert len(cohort.medications) == 0 and len(cohort.labs) == 0 and len(cohort.codes) == 6


def test_missing_file_and_wrong_layout_are_explained(tmp_path):
    root = write_fixture(tmp_path / "mimic")
    (root / "hosp" / "services.csv.gz").unlink()
    with pytest.raises(FileNotFoundError, match="services.csv.gz not found; fix:"):
        mimic.import_mimic(root, tmp_path / "out")
    pd.DataFrame({"hadm_id": [101], "service": ["MED"]}).to_csv(root / "hosp" / "services.csv.gz")
    with pytest.raises(ValueError, match=r"columns \['transfertime', 'curr_service'\] missing"):
        mimic.import_mimic(root, tmp_path / "out")


def test_cli(tmp_path, capsys):
    root = write_fixture(tmp_path / "mimic")
    assert cli_main(["import-mimic", "--mimic-dir", str(root), "--out", str(tmp_path / "o")]) == 0
    assert "admissions_icd9" in capsys.readouterr().out
    assert (tmp_path / "o" / "manifest.json").exists()


def test_prepare_reads_mimic_cohort_in_icd10_cm(tmp_path):
    from medcoding.cohort.preprocess import PrepareConfig, prepare

    mimic.import_mimic(write_fixture(tmp_path / "mimic"), tmp_path / "data")
    config = PrepareConfig(min_category_count=0, val_size=0, test_size=0)
    result = prepare(tmp_path / "data", tmp_path / "prepared", config)
    # 105: no codes; 102: no discharge summary; 103: adult psychiatry (PSYCH service)
    assert result.flow["courses_removed"].tolist() == [1, 1, 0, 0, 0, 0, 1, 0]  # 8: no text
    train = pd.read_parquet(tmp_path / "prepared" / "train.parquet")
    assert train["course_id"].tolist() == [101]
    assert list(train.loc[0, "codes_full"]) == ["I50.23", "E66.01", "I10"]
    assert list(train.loc[0, "codes_l3"]) == ["I50", "E66", "I10"]
    assert train.loc[0, "text"] == ("Heart failure, HTN.\n\nAddendum: BMI 41.\n\nMedications:\n"
                                    "- Furosemide\n\nLab results:\n- Creatinine: 1.4 mg/dL\n"
                                    "- Blood: NEG")

"""MIMIC-IV to the data contract: ``medcoding import-mimic --mimic-dir DIR --out DIR``.

Reads the published CSV(.gz) layouts of MIMIC-IV ``hosp`` and MIMIC-IV-Note:

=========================  ===========================================================
``hosp/admissions``        subject_id, hadm_id, admittime, dischtime, ..., admission_type
``hosp/diagnoses_icd``     subject_id, hadm_id, seq_num, icd_code, icd_version
``hosp/services``          subject_id, hadm_id, transfertime, prev_service, curr_service
``hosp/prescriptions``     optional: subject_id, hadm_id, ..., drug, ...
``hosp/labevents``         optional (with ``hosp/d_labitems``): hadm_id, itemid, value,
                           valuenum, valueuom, ...; d_labitems: itemid, label, fluid, category
``note/discharge``         note_id, subject_id, hadm_id, note_type, note_seq, charttime,
                           storetime, text
=========================  ===========================================================

Mapping
    - one course per admission: ``course_id = hadm_id``, ``patient_id = subject_id``,
      ``start_date`` = admission day, ``inpatient`` = admission type is not an observation stay;
    - ICD-10 admissions only: an admission with any ICD-9 diagnosis (``icd_version == 9``) is
      dropped with all its rows; admissions without any diagnosis are kept (``prepare`` removes
      them in its "no codes" step, so they show in the flow);
    - codes in dotted ICD-10-CM form (``E6601`` -> ``E66.01``); the primary diagnosis is
      ``seq_num == 1`` (an admission whose lowest seq_num is above 1 gets its lowest as primary,
      and is counted);
    - specialty and department from the *first* service of the admission (earliest
      ``transfertime``): ``department`` is the MIMIC service code (``CMED``), ``specialty`` its
      name in :data:`SERVICE_SPECIALTY` (``cardiology``); ``PSYCH`` is ``adult_psychiatry`` (MIMIC
      holds adults only); admissions without a service get ``unknown``;
    - notes: discharge summaries (``DS``) become ``discharge_summary``, addenda (``AD``)
      ``discharge_addendum``; medications: ``prescriptions.drug`` (no ATC in MIMIC); labs:
      ``d_labitems.label`` as test, ``value`` (``valuenum`` where ``value`` is empty) and
      ``valueuom``.

Every dropped row is counted in ``manifest.json`` under ``"flow"``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from medcoding import __version__, icd10
from medcoding.cohort import contract

SERVICE_SPECIALTY = {
    "CMED": "cardiology", "CSURG": "cardiac_surgery", "DENT": "dentistry",
    "ENT": "otorhinolaryngology", "EYE": "ophthalmology", "GU": "urology",
    "GYN": "gynaecology", "MED": "internal_medicine", "NB": "neonatology",
    "NBB": "neonatology", "NMED": "neurology", "NSURG": "neurosurgery",
    "OBS": "obstetrics", "OMED": "oncology", "ORTHO": "orthopaedic_surgery",
    "PSURG": "plastic_surgery", "PSYCH": "adult_psychiatry", "SURG": "general_surgery",
    "TRAUM": "trauma_surgery", "TSURG": "thoracic_surgery", "VSURG": "vascular_surgery",
}
NOTE_TYPES = {"DS": "discharge_summary", "AD": "discharge_addendum"}
LAB_CHUNK_ROWS = 2_000_000


def _find(directory: Path, name: str, required: bool = True) -> Path | None:
    for candidate in (directory / f"{name}.csv.gz", directory / f"{name}.csv"):
        if candidate.exists():
            return candidate
    if required:
        raise FileNotFoundError(
            f"{directory / name}.csv.gz not found; fix: pass --mimic-dir pointing at the MIMIC-IV "
            f"release folder holding hosp/ (and note/, or give --note-dir)"
        )
    return None


def _read(path: Path, columns: list[str], **kwargs) -> pd.DataFrame:
    header = pd.read_csv(path, nrows=0).columns
    missing = [column for column in columns if column not in header]
    if missing:
        raise ValueError(
            f"{path}: columns {missing} missing (the file has {list(header)}); fix: use the "
            "published MIMIC-IV CSV files unchanged"
        )
    return pd.read_csv(path, usecols=columns, **kwargs)


def _courses(hosp: Path, flow: dict) -> pd.DataFrame:
    admissions = _read(_find(hosp, "admissions"),
                       ["subject_id", "hadm_id", "admittime", "admission_type"])
    flow["admissions"] = len(admissions)
    services = _read(_find(hosp, "services"),
                     ["hadm_id", "transfertime", "curr_service"]).sort_values(
        ["hadm_id", "transfertime"], kind="stable")
    first_service = services.drop_duplicates("hadm_id").set_index("hadm_id")["curr_service"]
    service = admissions["hadm_id"].map(first_service)
    flow["admissions_without_service"] = int(service.isna().sum())
    service = service.fillna("unknown")
    return pd.DataFrame({
        "course_id": admissions["hadm_id"].astype("int64"),
        "patient_id": admissions["subject_id"].astype("int64"),
        "start_date": pd.to_datetime(admissions["admittime"]).dt.normalize(),
        "department": service.astype(str),
        "specialty": service.map(SERVICE_SPECIALTY).fillna(service.str.lower()).astype(str),
        "inpatient": ~admissions["admission_type"].fillna("").str.contains("OBSERVATION"),
    })


def _codes(hosp: Path, courses: pd.DataFrame, flow: dict) -> tuple[pd.DataFrame, pd.Series]:
    diagnoses = _read(_find(hosp, "diagnoses_icd"),
                      ["hadm_id", "seq_num", "icd_code", "icd_version"],
                      dtype={"icd_code": str})
    flow["diagnosis_rows"] = len(diagnoses)
    unknown = ~diagnoses["hadm_id"].isin(courses["course_id"])
    flow["diagnosis_rows_unknown_admission"] = int(unknown.sum())
    diagnoses = diagnoses[~unknown]
    icd9_admissions = diagnoses.loc[diagnoses["icd_version"] != 10, "hadm_id"].unique()
    keep_course = ~courses["course_id"].isin(icd9_admissions)
    flow["admissions_icd9"] = int((~keep_course).sum())
    dropped_rows = diagnoses["hadm_id"].isin(icd9_admissions)
    flow["diagnosis_rows_icd9_admissions"] = int(dropped_rows.sum())
    diagnoses = diagnoses[~dropped_rows].sort_values(["hadm_id", "seq_num"], kind="stable")
    first = ~diagnoses["hadm_id"].duplicated()
    flow["admissions_primary_not_seq_num_1"] = int((diagnoses.loc[first, "seq_num"] != 1).sum())
    raw = diagnoses["icd_code"].str.strip()
    dotted = icd10.normalise_series(raw, "cm", errors="coerce")
    codes = pd.DataFrame({
        "course_id": diagnoses["hadm_id"].astype("int64"),
        "code": dotted.fillna(raw).astype(str),
        "is_primary": first,
    })
    return codes.reset_index(drop=True), keep_course


def _notes(note_dir: Path, course_ids: pd.Series, flow: dict) -> pd.DataFrame:
    discharge = _read(_find(note_dir, "discharge"),
                      ["hadm_id", "note_type", "note_seq", "text"], dtype={"text": str})
    flow["note_rows"] = len(discharge)
    keep = discharge["hadm_id"].isin(course_ids)
    flow["note_rows_dropped_admission"] = int((~keep).sum())
    discharge = discharge[keep].sort_values(["hadm_id", "note_seq"], kind="stable")
    note_type = discharge["note_type"].map(NOTE_TYPES).fillna(discharge["note_type"].str.lower())
    return pd.DataFrame({
        "course_id": discharge["hadm_id"].astype("int64"),
        "note_type": note_type.astype(str),
        "text": discharge["text"].fillna("").astype(str),
    }).reset_index(drop=True)


def _medications(hosp: Path, course_ids: pd.Series, flow: dict) -> pd.DataFrame:
    path = _find(hosp, "prescriptions", required=False)
    if path is None:
        flow["prescription_rows"] = 0
        return pd.DataFrame({"course_id": pd.Series(dtype="int64"), "drug": pd.Series(dtype=str)})
    prescriptions = _read(path, ["hadm_id", "drug"], dtype={"drug": str})
    flow["prescription_rows"] = len(prescriptions)
    keep = prescriptions["hadm_id"].isin(course_ids) & prescriptions["drug"].notna()
    flow["prescription_rows_dropped"] = int((~keep).sum())
    prescriptions = prescriptions[keep]
    return pd.DataFrame({"course_id": prescriptions["hadm_id"].astype("int64"),
                         "drug": prescriptions["drug"].astype(str)}).reset_index(drop=True)


def _labs(hosp: Path, course_ids: pd.Series, flow: dict) -> pd.DataFrame:
    path = _find(hosp, "labevents", required=False)
    items_path = _find(hosp, "d_labitems", required=False)
    empty = pd.DataFrame({"course_id": pd.Series(dtype="int64"), "test": pd.Series(dtype=str),
                          "value": pd.Series(dtype=str), "unit": pd.Series(dtype=str)})
    if path is None or items_path is None:
        flow["lab_rows"] = 0
        return empty
    labels = _read(items_path, ["itemid", "label"]).set_index("itemid")["label"]
    columns = ["hadm_id", "itemid", "value", "valuenum", "valueuom"]
    _read(path, columns, nrows=0)
    parts, total, dropped = [], 0, 0
    reader = pd.read_csv(path, usecols=columns, chunksize=LAB_CHUNK_ROWS,
                         dtype={"value": str, "valueuom": str})
    for chunk in reader:
        total += len(chunk)
        value = chunk["value"].where(chunk["value"].notna(), chunk["valuenum"].astype(str))
        has_value = chunk["value"].notna() | chunk["valuenum"].notna()
        keep = chunk["hadm_id"].isin(course_ids) & has_value
        dropped += int((~keep).sum())
        chunk = chunk[keep]
        parts.append(pd.DataFrame({
            "course_id": chunk["hadm_id"].astype("int64"),
            "test": chunk["itemid"].map(labels).fillna(chunk["itemid"].astype(str)).astype(str),
            "value": value[keep].astype(str),
            "unit": chunk["valueuom"].astype(str).where(chunk["valueuom"].notna()),
        }))
    flow["lab_rows"], flow["lab_rows_dropped"] = total, dropped
    return pd.concat(parts, ignore_index=True) if parts else empty


def import_mimic(mimic_dir: str | Path, out_dir: str | Path,
                 note_dir: str | Path | None = None) -> dict:
    """Convert MIMIC-IV (``hosp/``) and MIMIC-IV-Note (``note/``) to contract tables in ``out_dir``.

    Returns the manifest written to ``out_dir/manifest.json``.
    """
    mimic_dir = Path(mimic_dir)
    hosp = mimic_dir / "hosp"
    note_dir = Path(note_dir) if note_dir is not None else mimic_dir / "note"
    flow: dict[str, int] = {}
    courses = _courses(hosp, flow)
    codes, keep_course = _codes(hosp, courses, flow)
    courses = courses[keep_course].reset_index(drop=True)
    flow["courses"] = len(courses)
    flow["courses_without_diagnoses"] = int((~courses["course_id"].isin(codes["course_id"])).sum())
    flow["code_rows"] = len(codes)
    tables = {
        "courses": courses,
        "notes": _notes(note_dir, courses["course_id"], flow),
        "medications": _medications(hosp, courses["course_id"], flow),
        "labs": _labs(hosp, courses["course_id"], flow),
        "codes": codes,
    }
    manifest = {
        "synthetic": False,
        "code_system": "cm",
        "source": "MIMIC-IV hosp + MIMIC-IV-Note discharge",
        "mimic_dir": str(mimic_dir),
        "note_dir": str(note_dir),
        "medcoding_version": __version__,
        "flow": flow,
    }
    contract.write(out_dir, tables, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medcoding import-mimic", description=__doc__.split(
        "\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mimic-dir", required=True, type=Path,
                        help="MIMIC-IV release folder holding hosp/ (and note/)")
    parser.add_argument("--note-dir", type=Path, default=None,
                        help="folder holding discharge.csv.gz (default: MIMIC_DIR/note)")
    parser.add_argument("--out", required=True, type=Path, help="output cohort directory")
    args = parser.parse_args(argv)
    manifest = import_mimic(args.mimic_dir, args.out, args.note_dir)
    for step, count in manifest["flow"].items():
        print(f"{step:<40}{count:>12,}")
    print(f"wrote {args.out}")
    return 0

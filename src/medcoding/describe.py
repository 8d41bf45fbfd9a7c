"""How a cohort looks, in figures: size, lengths, note styles, vocabulary, codes, dates.

``medcoding describe DIR [--json OUT]`` reads any cohort in the data contract (synthetic,
MIMIC-IV or an own extract) and prints a report; :func:`describe` returns the same figures as a
JSON-ready dict. No note text is printed for a cohort that is not known to be synthetic
(``manifest.json`` ``"synthetic": true``): only counts, shares and lengths.

Notes are scanned batch by batch (:data:`BATCH_NOTES` notes) with pyarrow, so a cohort of a
million courses is described without holding its text in memory; the other tables are read
with :func:`medcoding.cohort.contract.load`.

Definitions
    *words*: white-space separated pieces of a text; *word types*: distinct lower-cased runs of
    letters (digits and punctuation split words and are not words themselves).
    *Course text*: all notes of the course; its length is the sum of its notes' lengths.
    *Line shape*: a non-blank note line with every digit replaced by ``0`` and each run of white
    space folded to one space (leading and trailing space removed); ``shape_coverage`` is the
    share of all non-blank note lines whose shape is one of the :data:`TOP_SHAPES` commonest.
    *Year mention*: a number 1900-2099 standing alone (not part of a decimal or a longer
    number, not followed by a unit such as ``mL`` or ``mg``). It is *impossible* when it is
    after the year of the course's ``start_date``, or before the patient's birth: before
    ``start_date.year - age - 1``, the earliest birth year an age in whole years allows (only
    where ``courses`` has an ``age`` column).
    *Priority shares*: of the courses holding a code of a range (E66, I10-I15), the share where
    none of those codes is the primary one (the study: 86.9% and 89.6% secondary).
    *Codes per course*: distinct codes of the courses that have at least one.

Synthetic cohorts (a ``truth`` table) also get
    *title verbatim*: share of courses whose text holds the WHO title of the true primary code
    (as recorded, full code or category), case-insensitive, word for word.
    *Persistence*: P(a chronic category is true in the patient's next course | true in this
    one), over :data:`CHRONIC_CATEGORIES`, courses ordered by ``start_date`` then ``course_id``.
    *Coded share by evidence*: share of the true secondary diagnoses of coded courses whose
    level-3 category the human coder gave the course, per ``evidence`` level, and the ratio of
    the pooled share over :data:`~medcoding.cohort.contract.EVIDENCE_IMPLIED` to the one over
    :data:`~medcoding.cohort.contract.EVIDENCE_NAMED`.
    *Self-harm under 10*: courses of patients aged under 10 with a true X60-X84 code.
    *Human versus true codes per course* (coded courses), and, when the cohort has a
    ``coding.parquet`` table (``course_id, code, truly_present, human_coded, reason``), the
    number of rows per ``reason``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from medcoding import icd10
from medcoding.cohort import contract
from medcoding.io import write_json

BATCH_NOTES = 50_000
TOP_SHAPES = 100
PRIORITY_RANGES = ("E66", "I10-I15")
SELF_HARM = icd10.SUICIDE_RELATED
SELF_HARM_MAX_AGE = 10  # ages below this count

# Chronic conditions (level-3 WHO ICD-10 categories) that a patient keeps from course to course.
CHRONIC_CATEGORIES: tuple[str, ...] = (
    "E10", "E11", "E13", "E14",  # diabetes mellitus
    "I10", "I11", "I12", "I13", "I15",  # hypertensive diseases
    "N18",  # chronic kidney disease
    "I50",  # heart failure
    "I48",  # atrial fibrillation and flutter
    "I25",  # chronic ischaemic heart disease
    "J44",  # COPD
    "J45",  # asthma
    "E66",  # obesity
    "E78",  # dyslipidaemia
    "E03",  # hypothyroidism
    "G40",  # epilepsy
    "G20",  # Parkinson's disease
    "F00", "F01", "F02", "F03", "G30",  # dementia, Alzheimer's disease
    "G35",  # multiple sclerosis
    "K50", "K51",  # inflammatory bowel disease
    "M05", "M06",  # rheumatoid arthritis
    "M81",  # osteoporosis
    "L40",  # psoriasis
    "F20",  # schizophrenia
    "F31",  # bipolar affective disorder
    "F84",  # pervasive developmental disorders (autism)
    "F90",  # hyperkinetic disorders (ADHD)
    "B20", "B21", "B22", "B23", "B24",  # HIV disease
)  # fmt: skip

YEAR_PREFILTER = r"\b(?:19|20)\d\d\b"  # RE2 (pyarrow): notes that may hold a year
YEAR = re.compile(
    r"(?<![\d.,])\b(19\d\d|20\d\d)\b(?![.,]\d)"
    r"(?!\s*(?:mL|ml|L|mg|g|kg|ug|µg|ng|mmol|umol|µmol|U|IU|units?|tablets?|metres?|m)\b)")
LETTERS = re.compile(r"[^\W\d_]+")  # a word type: a run of letters
DIGIT = re.compile(r"\d")


# --------------------------------------------------------------------------- text pieces


def year_mentions(text: str) -> list[int]:
    """The years mentioned in ``text`` (see the module doc), in order."""
    return [int(match) for match in YEAR.findall(text)]


def line_shape(line: str) -> str:
    """A line's shape: every digit replaced by ``0``, white space folded to single spaces."""
    return " ".join(DIGIT.sub("0", line).split())


def line_shapes(texts: pa.Array | pa.ChunkedArray) -> Counter:
    """How many non-blank lines of ``texts`` have each shape.

    Distinct lines are counted in Arrow first; only those are shaped in Python.
    """
    lines = pc.value_counts(pc.list_flatten(pc.split_pattern(texts, "\n")))
    shapes: Counter = Counter()
    for line, count in zip(lines.field("values").to_pylist(), lines.field("counts").to_pylist(),
                           strict=True):
        shape = line_shape(line)
        if shape:
            shapes[shape] += count
    return shapes


def word_types(texts: pa.Array | pa.ChunkedArray) -> set[str]:
    """Distinct lower-cased runs of letters in ``texts``.

    Distinct white-space separated tokens are found in Arrow first; only those are cut into
    letter runs in Python.
    """
    tokens = pc.unique(pc.list_flatten(pc.utf8_split_whitespace(texts)))
    return set(LETTERS.findall(" ".join(tokens.to_pylist()).lower()))


def shape_coverage(shapes: Counter, top: int = TOP_SHAPES) -> float:
    """Share of the lines counted in ``shapes`` whose shape is one of the ``top`` commonest."""
    total = sum(shapes.values())
    return sum(count for _, count in shapes.most_common(top)) / total if total else float("nan")


def quantiles(values, name: str) -> dict[str, float]:
    """``{name}_median``, ``{name}_p90`` and ``{name}_mean`` of ``values`` (NaN when empty)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return {f"{name}_median": np.nan, f"{name}_p90": np.nan, f"{name}_mean": np.nan}
    return {f"{name}_median": float(np.median(values)),
            f"{name}_p90": float(np.quantile(values, 0.9)), f"{name}_mean": float(values.mean())}


# --------------------------------------------------------------------------- the note scan


class NoteScan:
    """Figures of the note text, accumulated batch by batch.

    ``courses`` is the cohort's course table (its row order gives the course positions);
    ``titles`` holds, per course position, the lower-cased title to look for (None: none).
    """

    def __init__(self, courses: pd.DataFrame, titles: np.ndarray | None = None):
        n = len(courses)
        self.index = pd.Index(courses["course_id"])
        self.course_chars = np.zeros(n, dtype=np.int64)
        self.course_words = np.zeros(n, dtype=np.int64)
        self.note_chars: list[np.ndarray] = []
        self.note_words: list[np.ndarray] = []
        self.shapes: Counter = Counter()
        self.words: set[str] = set()
        self.year_mentions = np.zeros(n, dtype=np.int64)
        self.impossible_years = np.zeros(n, dtype=np.int64)
        start = pd.to_datetime(courses["start_date"])
        self.latest_year = start.dt.year.to_numpy()
        self.earliest_year = (self.latest_year - courses["age"].to_numpy() - 1
                              if "age" in courses else None)
        self.titles = titles
        self.title_found = np.zeros(n, dtype=bool)

    def update(self, course_ids: pa.Array, texts: pa.Array) -> None:
        """Add one batch of notes (``course_ids`` and ``texts`` aligned)."""
        positions = self.index.get_indexer(course_ids.to_numpy(zero_copy_only=False))
        chars = pc.utf8_length(texts).to_numpy(zero_copy_only=False).astype(np.int64)
        words = pc.list_value_length(pc.utf8_split_whitespace(texts)).to_numpy(
            zero_copy_only=False).astype(np.int64)
        self.note_chars.append(chars)
        self.note_words.append(words)
        np.add.at(self.course_chars, positions, chars)
        np.add.at(self.course_words, positions, words)
        self.shapes.update(line_shapes(texts))
        self.words |= word_types(texts)
        self._years(positions, texts)
        if self.titles is not None:
            self._titles(positions, texts)

    def _years(self, positions: np.ndarray, texts: pa.Array) -> None:
        rows = np.flatnonzero(pc.fill_null(pc.match_substring_regex(texts, YEAR_PREFILTER),
                                           False).to_numpy(zero_copy_only=False))
        for row, text in zip(rows, texts.take(pa.array(rows, pa.int64())).to_pylist(),
                             strict=True):
            course = positions[row]
            years = np.array(year_mentions(text), dtype=np.int64)
            self.year_mentions[course] += len(years)
            bad = years > self.latest_year[course]
            if self.earliest_year is not None:
                bad |= years < self.earliest_year[course]
            self.impossible_years[course] += int(bad.sum())

    def _titles(self, positions: np.ndarray, texts: pa.Array) -> None:
        lowered = pc.utf8_lower(texts).to_pylist()
        for course, text in zip(positions, lowered, strict=True):
            title = self.titles[course]
            if title and not self.title_found[course] and title in text:
                self.title_found[course] = True

    def figures(self, has_notes: np.ndarray) -> dict:
        """The scan's figures; ``has_notes`` marks the courses with at least one note."""
        note_chars = np.concatenate(self.note_chars) if self.note_chars else np.zeros(0)
        note_words = np.concatenate(self.note_words) if self.note_words else np.zeros(0)
        n_courses = len(self.course_chars)
        figures = {
            **quantiles(note_chars, "note_chars"), **quantiles(note_words, "note_words"),
            **quantiles(self.course_chars[has_notes], "course_chars"),
            **quantiles(self.course_words[has_notes], "course_words"),
            "word_types": len(self.words),
            "lines": int(sum(self.shapes.values())), "line_shapes": len(self.shapes),
            "shape_coverage": shape_coverage(self.shapes),
            "year_mentions_per_course": float(self.year_mentions.sum() / max(n_courses, 1)),
            "impossible_years_per_course":
                float(self.impossible_years.sum() / max(n_courses, 1)),
            "courses_with_impossible_year": int((self.impossible_years > 0).sum()),
            "birth_year_checked": self.earliest_year is not None,
        }
        return figures


def scan_notes(path: Path, scan: NoteScan, batch_notes: int = BATCH_NOTES) -> None:
    """Feed ``notes.parquet``'s ``course_id`` and ``text`` to ``scan``, one batch at a time.

    Checks the text as the contract does (string type, valid UTF-8, no missing values).
    """
    file = pq.ParquetFile(path)
    text_type = file.schema_arrow.field("text").type
    if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
        raise contract.ContractError("notes.parquet", "text", f"has type {text_type}, expected "
                                     "text", "store text as UTF-8 strings")
    offset = 0
    for batch in file.iter_batches(batch_size=batch_notes, columns=["course_id", "text"]):
        texts = batch.column("text")
        try:
            texts.validate(full=True)
        except pa.ArrowInvalid:
            raise contract.ContractError(
                "notes.parquet", "text", f"text is not valid UTF-8 in rows {offset}-"
                f"{offset + len(texts) - 1}", "decode the text to Unicode before writing it "
                "(e.g. bytes.decode('latin-1') or the source's real encoding)") from None
        if texts.null_count:
            rows = (offset + np.flatnonzero(pc.is_null(texts).to_numpy(zero_copy_only=False)))
            raise contract.ContractError(
                "notes.parquet", "text", "required column has missing values",
                "fill in text in every row or drop those rows at the source",
                [(int(row), None) for row in rows[:5]], texts.null_count)
        scan.update(batch.column("course_id"), texts)
        offset += len(texts)


# --------------------------------------------------------------------------- table figures


def _normalised(codes: pd.DataFrame, system: str) -> pd.DataFrame:
    """``codes``/``truth`` rows with ``full`` (dotted, raw text where no code) and ``l3``."""
    raw = codes["code"].astype(str).str.strip().str.upper()
    full = icd10.normalise_series(raw, system, errors="coerce").fillna(raw).astype(str)
    return codes.assign(full=full, l3=full.str[:3])


def codes_per_course(codes: pd.DataFrame) -> pd.Series:
    """Distinct codes (``full``) per course holding at least one."""
    return codes.drop_duplicates(["course_id", "full"]).groupby("course_id").size()


def priority_shares(codes: pd.DataFrame, spec: str) -> dict:
    """Courses holding a code in ``spec`` and the share where none of them is the primary."""
    in_range = codes[icd10.in_range_mask(codes["full"], spec)]
    primary = in_range.groupby("course_id")["is_primary"].any()
    n = len(primary)
    return {"courses": int(n), "secondary_share": float((~primary).mean()) if n else np.nan}


def persistence(courses: pd.DataFrame, truth: pd.DataFrame,
                categories: tuple[str, ...] = CHRONIC_CATEGORIES) -> tuple[float, pd.DataFrame]:
    """P(chronic category true in the patient's next course | true in this one).

    Returns the pooled probability and a table per category (``category, pairs, persists,
    share``) over the (course, category) pairs whose course has a next course.
    """
    order = courses.sort_values(["patient_id", "start_date", "course_id"], kind="stable")
    same_patient = order["patient_id"].to_numpy()[1:] == order["patient_id"].to_numpy()[:-1]
    following = pd.Series(order["course_id"].to_numpy()[1:][same_patient],
                          index=order["course_id"].to_numpy()[:-1][same_patient])
    chronic = truth.loc[truth["l3"].isin(categories), ["course_id", "l3"]].drop_duplicates()
    pairs = chronic[chronic["course_id"].isin(following.index)].copy()
    pairs["next_id"] = following.loc[pairs["course_id"]].to_numpy()
    present = set(zip(chronic["course_id"], chronic["l3"], strict=True))
    pairs["persists"] = [(course, category) in present
                         for course, category in zip(pairs["next_id"], pairs["l3"], strict=True)]
    table = (pairs.groupby("l3")["persists"].agg(pairs="size", persists="sum")
             .reset_index().rename(columns={"l3": "category"}))
    table["share"] = table["persists"] / table["pairs"]
    pooled = float(pairs["persists"].mean()) if len(pairs) else np.nan
    return pooled, table.sort_values("pairs", ascending=False, kind="stable")


def coded_share_by_evidence(truth: pd.DataFrame, codes: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Share of true secondaries of coded courses whose category the coder gave the course.

    Returns a table (``evidence, secondaries, coded, share``) and the ratio of the pooled share
    over :data:`contract.EVIDENCE_IMPLIED` to the one over :data:`contract.EVIDENCE_NAMED`.
    """
    coded = set(zip(codes["course_id"], codes["l3"], strict=True))
    secondaries = truth[~truth["is_primary"].astype(bool)
                        & truth["course_id"].isin(codes["course_id"])]
    secondaries = secondaries.drop_duplicates(["course_id", "l3"])
    hit = np.array([(course, category) in coded for course, category in
                    zip(secondaries["course_id"], secondaries["l3"], strict=True)], dtype=bool)
    frame = secondaries.assign(coded=hit)
    table = (frame.groupby("evidence")["coded"].agg(secondaries="size", coded="sum")
             .reset_index())
    table["share"] = table["coded"] / table["secondaries"]

    def pooled(levels: tuple[str, ...]) -> float:
        chosen = frame[frame["evidence"].isin(levels)]
        return float(chosen["coded"].mean()) if len(chosen) else np.nan

    named, implied = pooled(contract.EVIDENCE_NAMED), pooled(contract.EVIDENCE_IMPLIED)
    ratio = implied / named if named and not np.isnan(named) else np.nan
    return table, ratio


def self_harm_young(courses: pd.DataFrame, truth: pd.DataFrame,
                    max_age: int = SELF_HARM_MAX_AGE) -> int | None:
    """Courses of patients aged under ``max_age`` with a true X60-X84 code (None: no ages)."""
    if "age" not in courses:
        return None
    young = courses.loc[courses["age"] < max_age, "course_id"]
    harm = truth[icd10.in_range_mask(truth["full"], SELF_HARM)]
    return int(harm.loc[harm["course_id"].isin(young), "course_id"].nunique())


def primary_titles(courses: pd.DataFrame, truth: pd.DataFrame, system: str) -> np.ndarray:
    """Per course position: the lower-cased title of its true primary code (None: unknown)."""
    primary = truth[truth["is_primary"].astype(bool)].drop_duplicates("course_id")
    valid = primary[icd10.valid_mask(primary["full"], system)]
    titles = pd.Series([icd10.title(code, system).lower() for code in valid["full"]],
                       index=valid["course_id"].to_numpy(), dtype=object)
    return titles.reindex(courses["course_id"].to_numpy()).to_numpy()


def note_types_by_specialty(courses: pd.DataFrame, notes: pd.DataFrame) -> pd.DataFrame:
    """Notes per specialty (rows) and note type (columns)."""
    specialty = notes["course_id"].map(courses.set_index("course_id")["specialty"])
    return pd.crosstab(specialty.rename("specialty"), notes["note_type"])


def read_coding(directory: Path) -> pd.DataFrame | None:
    """``coding.parquet`` when the cohort has one (None otherwise), its columns checked."""
    path = directory / "coding.parquet"
    if not path.exists():
        return None
    frame = pd.read_parquet(path)
    wanted = ["course_id", "code", "truly_present", "human_coded", "reason"]
    missing = [column for column in wanted if column not in frame]
    if missing:
        raise contract.ContractError("coding.parquet", missing[0], "required column is missing",
                                     f"write the columns {wanted}")
    return frame


# --------------------------------------------------------------------------- the report


def describe(directory: str | Path, batch_notes: int = BATCH_NOTES) -> dict:
    """Every figure of the module doc for the cohort in ``directory``, JSON-ready."""
    directory = Path(directory)
    cohort = contract.load(directory, lazy=("notes",))
    system = cohort.code_system
    courses = cohort.courses
    batches = list(contract.iter_batches(cohort, "notes", columns=["course_id", "note_type"]))
    notes = (pd.concat(batches, ignore_index=True) if batches  # the text: scan_notes, by batch
             else pd.DataFrame({"course_id": pd.Series(dtype="int64"),
                                "note_type": pd.Series(dtype=object)}))
    codes = _normalised(cohort.codes, system)
    truth = _normalised(cohort.truth, system) if cohort.truth is not None else None

    per_patient = courses.groupby("patient_id").size()
    notes_per_course = notes.groupby("course_id").size().reindex(courses["course_id"],
                                                                 fill_value=0)
    human = codes_per_course(codes)
    figures: dict = {
        "directory": str(directory), "synthetic": cohort.synthetic, "code_system": system,
        "courses": len(courses), "patients": int(courses["patient_id"].nunique()),
        **quantiles(per_patient, "courses_per_patient"),
        "notes": len(notes), **quantiles(notes_per_course, "notes_per_course"),
        "courses_without_notes": int((notes_per_course == 0).sum()),
        "courses_without_codes": int(len(courses) - courses["course_id"].isin(
            codes["course_id"]).sum()),
        **quantiles(human, "codes_per_course"),
        "priority_human": {spec: priority_shares(codes, spec) for spec in PRIORITY_RANGES},
    }
    types = note_types_by_specialty(courses, notes)
    figures["note_types_by_specialty"] = {
        specialty: {t: int(n) for t, n in row.items() if n} for specialty, row in types.iterrows()}

    titles = primary_titles(courses, truth, system) if truth is not None else None
    scan = NoteScan(courses, titles)
    scan_notes(directory / "notes.parquet", scan, batch_notes)
    figures.update(scan.figures(notes_per_course.to_numpy() > 0))
    if cohort.synthetic:
        figures["top_line_shapes"] = [[shape, count] for shape, count in
                                      scan.shapes.most_common(10)]
    if truth is not None:
        figures.update(_truth_figures(courses, codes, truth, human, scan, titles))
    coding = read_coding(directory)
    if coding is not None:
        counts = coding.groupby(["truly_present", "human_coded", "reason"]).size()
        figures["coding_reasons"] = [
            {"truly_present": bool(p), "human_coded": bool(h), "reason": str(r), "rows": int(n)}
            for (p, h, r), n in counts.items()]
    return figures


def _truth_figures(courses, codes, truth, human, scan: NoteScan, titles) -> dict:
    with_title = np.array([t is not None and not pd.isna(t) for t in titles], dtype=bool)
    pooled, by_category = persistence(courses, truth)
    by_evidence, ratio = coded_share_by_evidence(truth, codes)
    true_counts = codes_per_course(truth).reindex(human.index, fill_value=0)
    return {
        "title_verbatim_share": float(scan.title_found[with_title].mean())
        if with_title.any() else np.nan,
        "priority_truth": {spec: priority_shares(truth, spec) for spec in PRIORITY_RANGES},
        "persistence": pooled,
        "persistence_by_category": by_category.to_dict("records"),
        "coded_share_by_evidence": by_evidence.to_dict("records"),
        "implied_named_ratio": ratio,
        "evidence_named": list(contract.EVIDENCE_NAMED),
        "evidence_implied": list(contract.EVIDENCE_IMPLIED),
        "self_harm_under_10": self_harm_young(courses, truth),
        **quantiles(true_counts, "true_codes_per_coded_course"),
    }


def format_report(f: dict) -> str:
    """The figures of :func:`describe` as a plain-text report."""
    def pct(value) -> str:
        return "—" if value is None or pd.isna(value) else f"{100 * value:.1f}%"

    def num(value, digits: int = 1) -> str:
        return "—" if value is None or pd.isna(value) else f"{value:,.{digits}f}"

    kind = "synthetic" if f["synthetic"] else "not known to be synthetic: no text shown"
    lines = [
        f"Cohort {f['directory']} ({kind}, ICD-10 {f['code_system']})",
        "",
        f"courses {f['courses']:,}   patients {f['patients']:,}   courses per patient: mean "
        f"{num(f['courses_per_patient_mean'], 2)}, median {num(f['courses_per_patient_median'], 0)}"
        f", p90 {num(f['courses_per_patient_p90'], 0)}",
        f"notes {f['notes']:,}   per course: mean {num(f['notes_per_course_mean'], 2)}, median "
        f"{num(f['notes_per_course_median'], 0)}   courses without notes "
        f"{f['courses_without_notes']:,}",
        "",
        "lengths              median      p90     mean",
    ]
    for name, label in [("note_chars", "note, characters"), ("note_words", "note, words"),
                        ("course_chars", "course, characters"), ("course_words", "course, words")]:
        lines.append(f"  {label:<18}{num(f[name + '_median'], 0):>8} {num(f[name + '_p90'], 0):>8}"
                     f" {num(f[name + '_mean'], 0):>8}")
    lines += [
        "",
        f"word types {f['word_types']:,}   non-blank lines {f['lines']:,} in "
        f"{f['line_shapes']:,} shapes; the {TOP_SHAPES} commonest cover "
        f"{pct(f['shape_coverage'])}",
        f"year mentions per course {num(f['year_mentions_per_course'], 3)}; impossible (after "
        f"the course{' or before birth' if f['birth_year_checked'] else ''}) "
        f"{num(f['impossible_years_per_course'], 4)} per course, in "
        f"{f['courses_with_impossible_year']:,} courses",
        "",
        f"human codes per coded course: median {num(f['codes_per_course_median'], 0)}, mean "
        f"{num(f['codes_per_course_mean'], 2)}   courses without codes "
        f"{f['courses_without_codes']:,}",
    ]
    for key, who in [("priority_human", "human"), ("priority_truth", "true")]:
        if key in f:
            shares = ", ".join(f"{spec} {pct(v['secondary_share'])} of {v['courses']:,}"
                               for spec, v in f[key].items())
            lines.append(f"secondary share of {who} codes: {shares}")
    if "persistence" in f:
        evidence = ", ".join(f"{row['evidence']} {pct(row['share'])} of {row['secondaries']:,}"
                             for row in f["coded_share_by_evidence"])
        young = f["self_harm_under_10"]
        lines += [
            "",
            "synthetic truth",
            f"  true primary's WHO title verbatim in the text: {pct(f['title_verbatim_share'])}",
            f"  P(chronic category true in the next course | true now): "
            f"{num(f['persistence'], 3)}",
            f"  coded share of true secondaries: {evidence}",
            f"  ratio implied ({'/'.join(f['evidence_implied'])}) / named "
            f"({'/'.join(f['evidence_named'])}): {num(f['implied_named_ratio'], 2)}",
            f"  courses with true X60-X84 under age {SELF_HARM_MAX_AGE}: "
            f"{'— (no age column)' if young is None else young}",
            f"  codes per coded course, true: median "
            f"{num(f['true_codes_per_coded_course_median'], 0)}, mean "
            f"{num(f['true_codes_per_coded_course_mean'], 2)}",
        ]
    if "coding_reasons" in f:
        lines += ["", "coding reasons (rows)"]
        lines += [f"  {'present' if r['truly_present'] else 'absent':<8}"
                  f"{'coded' if r['human_coded'] else 'uncoded':<9}{r['reason']:<30}"
                  f"{r['rows']:>9,}" for r in f["coding_reasons"]]
    lines += ["", "notes per specialty and note type"]
    for specialty, counts in f["note_types_by_specialty"].items():
        lines.append(f"  {specialty}: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    if "top_line_shapes" in f:
        lines += ["", "commonest line shapes (synthetic cohort)"]
        lines += [f"  {count:>8,}  {shape[:90]}" for shape, count in f["top_line_shapes"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="medcoding describe",
        description="Describe a cohort in the data contract: size, lengths, note types, "
                    "vocabulary, line shapes, codes, impossible years and, for synthetic "
                    "cohorts, how the truth shows in the text and the codes. Prints figures "
                    "only (no note text unless the cohort is synthetic).")
    parser.add_argument("directory", type=Path, help="cohort directory (data contract)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    try:
        figures = describe(args.directory)
    except contract.ContractError as error:
        print(f"medcoding describe: {error}", file=sys.stderr)
        return 2
    print(format_report(figures))
    if args.json is not None:
        write_json(args.json, figures)
        print(f"\nwrote {args.json}")
    return 0

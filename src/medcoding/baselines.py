"""No-learning and shallow baselines, scored exactly like PLM-CA.

Every baseline returns a float32 score matrix ``[courses, labels]`` whose columns follow a label
list (``labels.json``), so :func:`medcoding.metrics.evaluate` reads it as it reads the model's
predictions. All of them work on any prepared split (CONTRIBUTING.md, "Prepared splits").

Baselines
    ``frequency``   the code-frequency prior: every course gets each label's share of the
                    training courses (:func:`frequency_scores`); the same ranking for all.
    ``icd_titles``  a context-blind dictionary matcher over the code system's titles: a level-3
                    category scores 1 when its title, or the title of one of its full codes,
                    occurs in the text (:func:`icd_title_phrases`, :class:`PhraseMatcher`).
    ``surface_forms`` the same matcher over a JSON file ``{category: [phrases]}``, e.g. the
                    synthetic generator's own surface forms (:func:`read_surface_forms`).
    ``tfidf_lr``    TF-IDF of word 1-2 grams + one-vs-rest logistic regression, trained on the
                    human codes (``codes_l3``) or the truth (``true_l3``) (:func:`fit_tfidf_lr`);
                    its penalty ``C`` matters (micro F1 vs truth 0.60 / 0.81 / 0.86 / 0.88
                    at C = 1 / 10 / 100 / 1000 on 3,000 synthetic patients), so one model is
                    fitted per value of :data:`DEFAULT_C` and the best on validation is kept.

Matching (:class:`PhraseMatcher`)
    Text and phrases are cut into the same tokens: runs of letters and digits, and each other
    non-space character on its own, all lower-cased. A phrase occurs where its tokens occur in a
    row, so matching is case-insensitive, respects word boundaries (``HF`` is not found in
    ``HFpEF``) and ignores how much white space separates the words. The text is read left to
    right and at each place the longest phrase found is taken, then reading goes on after it:
    ``type 2 diabetes mellitus`` counts once, for E11, not also as ``diabetes mellitus`` (E14),
    as a dictionary tagger would (``all_matches=True``, ``--all-matches``: every occurrence
    counts, also one inside a longer phrase). Whether a mention is negated, in the family or in
    the past is not looked at: that is the point of the baseline.

Thresholds
    Every baseline's decision threshold is tuned on the validation split with
    :func:`medcoding.metrics.tune_threshold` against the codes it was trained on, as PLM-CA's is.
    A 0/1 matcher predicts the same at every threshold of the grid; the middle one (0.5) is used.

``medcoding baselines --prepared DIR [--surface-forms JSON] [--train-on human|truth]`` prints
micro F1 against the human codes and, where the split carries ``true_l3``, against the truth,
with MAP and the thresholds used.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from medcoding import icd10
from medcoding.io import read_json
from medcoding.metrics import evaluate, label_matrix, tune_threshold

TARGETS = {"human": "codes_l3", "truth": "true_l3"}
DEFAULT_C = (10.0, 100.0, 1000.0)  # penalties tried; the best on validation is kept
TOKEN = re.compile(r"[^\W_]+|[^\w\s]|_", re.UNICODE)


def tokens(text: str) -> list[str]:
    """Lower-cased tokens: runs of letters/digits, and every other non-space character alone."""
    return TOKEN.findall(text.lower())


def code_lists(values: Iterable) -> list[list[str]]:
    """Code lists of a prepared column (arrays, lists or missing values) as Python lists."""
    return [[] if codes is None or isinstance(codes, float) else list(codes) for codes in values]


# --------------------------------------------------------------------------- frequency prior


def label_shares(codes: Sequence[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    """Share of the courses holding each label ``[labels]`` (a code listed twice counts once)."""
    matrix = label_matrix(codes, labels)  # [courses, labels]
    if matrix.shape[0] == 0:
        raise ValueError("no training courses; the frequency prior needs at least one")
    return np.asarray(matrix.sum(axis=0), dtype=np.float64).ravel() / matrix.shape[0]


def frequency_scores(shares: np.ndarray, n_courses: int) -> np.ndarray:
    """The prior for ``n_courses`` courses: every row is ``shares`` ``[courses, labels]``.

    A read-only broadcast view: no memory per course.
    """
    return np.broadcast_to(np.asarray(shares, dtype=np.float32), (n_courses, len(shares)))


# --------------------------------------------------------------------------- dictionary matcher


class PhraseMatcher:
    """Scores 1 for a label when one of its phrases occurs in a text (see the module doc).

    ``phrases`` maps each label to its phrases; a phrase may belong to several labels. Phrases
    are held in a token trie, so a text is read once, whatever the number of phrases. By
    default the longest phrase at a place is taken and reading goes on after it;
    ``all_matches=True`` counts every occurrence, also one inside a longer phrase
    (``diabetes mellitus`` inside ``type 2 diabetes mellitus``).
    """

    _END = ""  # trie key holding the label columns of the phrase that ends at this node

    def __init__(self, phrases: Mapping[str, Iterable[str]], labels: Sequence[str],
                 all_matches: bool = False):
        self.labels = list(labels)
        self.all_matches = all_matches
        column = {label: i for i, label in enumerate(self.labels)}
        self.trie: dict = {}
        self.n_phrases = 0
        for label, texts in phrases.items():
            if label not in column:
                continue
            for phrase in texts:
                words = tokens(phrase)
                if not words:
                    continue
                node = self.trie
                for word in words:
                    node = node.setdefault(word, {})
                ends = node.setdefault(self._END, set())
                self.n_phrases += column[label] not in ends
                ends.add(column[label])

    def find(self, text: str) -> set[int]:
        """Label columns whose phrases occur in ``text`` (see the class doc)."""
        words = tokens(text)
        found: set[int] = set()
        start = 0
        while start < len(words):
            node, longest, end = self.trie, set(), start + 1
            for position in range(start, len(words)):
                node = node.get(words[position])
                if node is None:
                    break
                if self._END in node:
                    if self.all_matches:
                        found |= node[self._END]
                    else:
                        longest, end = node[self._END], position + 1
            found |= longest
            start = end
        return found

    def scores(self, texts: Iterable[str]) -> np.ndarray:
        """0/1 float32 scores ``[texts, labels]``."""
        rows, columns = [], []
        count = 0
        for row, text in enumerate(texts):
            hits = self.find(text)
            rows.extend([row] * len(hits))
            columns.extend(hits)
            count = row + 1
        out = np.zeros((count, len(self.labels)), dtype=np.float32)
        out[rows, columns] = 1.0
        return out


def icd_title_phrases(categories: Iterable[str], system: str = "who") -> dict[str, list[str]]:
    """``{category: [titles]}``: each category's title and the titles of all codes below it.

    Categories that are not defined in ``system`` (or are not level-3 codes) get no phrases.
    """
    library = icd10._library(system)
    phrases = {}
    for category in categories:
        if not icd10.is_category(category, system):
            continue
        codes = [category] + [code for code in library.get_descendants(category)
                              if icd10.is_valid(code, system)]
        phrases[category] = sorted({icd10.title(code, system) for code in codes})
    return phrases


def read_surface_forms(path: str | Path) -> dict[str, list[str]]:
    """Read a surface-form file: a JSON object ``{code: [phrase, ...]}``.

    Keys are ICD-10 codes in any form :func:`medcoding.icd10.normalise` reads; a full code's
    phrases go to its level-3 category. Raises ``ValueError`` naming the file and the bad keys.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot be read as JSON ({error}); fix: write an object "
                         '{"E66": ["obesity", "BMI over 30"], ...}') from None
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a JSON object {{"E66": ["obesity", ...]}}, got '
                         f"{type(data).__name__}")
    phrases: dict[str, list[str]] = {}
    bad = []
    for key, values in data.items():
        try:
            category = icd10.normalise(str(key))[:3]
        except ValueError:
            bad.append(key)
            continue
        if isinstance(values, str) or not isinstance(values, list) or not all(
                isinstance(value, str) for value in values):
            raise ValueError(f"{path}: key {key!r} must map to a list of strings; got "
                             f"{values!r:.80}")
        phrases.setdefault(category, []).extend(values)
    if bad:
        raise ValueError(f"{path}: {len(bad)} key(s) are no ICD-10 codes, e.g. {bad[:5]}; fix: "
                         "use codes such as 'E66' or 'E66.0' as keys")
    return phrases


# --------------------------------------------------------------------------- TF-IDF + LR


@dataclass
class TfidfLogistic:
    """A fitted TF-IDF vectoriser and one-vs-rest logistic regression over ``labels``."""

    vectorizer: object
    classifier: object
    labels: list[str]

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities ``[texts, labels]`` (float32)."""
        features = self.vectorizer.transform(texts)  # [texts, vocabulary] sparse
        return np.asarray(self.classifier.predict_proba(features), dtype=np.float32)


def fit_tfidf_lr(texts: Sequence[str], codes: Sequence[Sequence[str]], labels: Sequence[str],
                 c: float = 100.0, min_df: int = 2, max_features: int | None = 200_000,
                 seed: int = 0) -> TfidfLogistic:
    """Fit TF-IDF (word 1-2 grams, sublinear tf) + one-vs-rest logistic regression.

    ``codes`` are the training targets per text; labels without a training course get a
    constant score of 0. ``c`` is the inverse L2 penalty of each binary regression (liblinear,
    dual form: fewer courses than features). At a large ``c`` liblinear may stop at its
    iteration cap before it converges; its convergence warnings are silenced, because the model
    is judged on validation like any other.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, max_features=max_features,
                                 sublinear_tf=True, dtype=np.float32)
    features = vectorizer.fit_transform(texts)  # [texts, vocabulary]
    # int64, not int8: scikit-learn's label binariser holds the label columns' numbers in the
    # target's dtype, and int8 wraps them past 127 (columns come back reordered).
    y = label_matrix(codes, labels).astype(np.int64).tocsc()  # [texts, labels]
    present = np.flatnonzero(np.diff(y.indptr) > 0)
    classifier = OneVsRestClassifier(
        LogisticRegression(C=c, solver="liblinear", dual=True, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(features, y[:, present].tocsr())
    return TfidfLogistic(vectorizer, _Expanded(classifier, present, len(labels)), list(labels))


@dataclass
class _Expanded:
    """A classifier over some label columns, padded with zero scores to all ``n_labels``."""

    classifier: object
    columns: np.ndarray
    n_labels: int

    def predict_proba(self, features) -> np.ndarray:
        out = np.zeros((features.shape[0], self.n_labels), dtype=np.float32)
        if len(self.columns):
            out[:, self.columns] = self.classifier.predict_proba(features)
        return out


# --------------------------------------------------------------------------- evaluation


@dataclass
class Split:
    """One prepared split: texts, patients and code lists at level 3 (``truth`` None if the
    split has no ``true_l3``)."""

    texts: list[str]
    patient_ids: np.ndarray
    human: list[list[str]]
    truth: list[list[str]] | None
    course_ids: np.ndarray | None = None

    def target(self, train_on: str) -> list[list[str]]:
        codes = self.human if train_on == "human" else self.truth
        if codes is None:
            raise ValueError("--train-on truth needs the synthetic cohort's true_l3 column; this "
                             "split has none. Fix: use --train-on human")
        return codes


def read_split(path: Path, train_patients: int | None = None) -> Split:
    """Read texts and level-3 code lists of a prepared split (``patient_rank < N`` if given)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; fix: run `medcoding prepare` first")
    columns = pq.read_schema(path).names
    missing = [c for c in ("text", "patient_id", "codes_l3") if c not in columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; fix: pass a directory written "
                         "by `medcoding prepare`")
    wanted = ["text", "patient_id", "codes_l3"] + (["true_l3"] if "true_l3" in columns else [])
    wanted += ["course_id"] if "course_id" in columns else []
    frame = pd.read_parquet(path, columns=wanted + (["patient_rank"] if train_patients else []))
    if train_patients is not None:
        frame = frame[frame["patient_rank"] < train_patients]
    truth = code_lists(frame["true_l3"]) if "true_l3" in frame else None
    course_ids = frame["course_id"].to_numpy() if "course_id" in frame else None
    return Split(frame["text"].tolist(), frame["patient_id"].to_numpy(),
                 code_lists(frame["codes_l3"]), truth, course_ids)


@dataclass
class BaselineScores:
    """One baseline's test scores ``[test courses, labels]`` and its validation threshold."""

    name: str
    threshold: float
    scores: np.ndarray


@dataclass
class BaselineRun:
    """Every baseline scored on one prepared directory's test split."""

    labels: list[str]
    test: Split
    train_on: str
    baselines: list[BaselineScores]

    def reference(self, name: str):
        """The test label matrix ``[courses, labels]`` of ``"human"`` or ``"truth"`` (or None)."""
        codes = self.test.human if name == "human" else self.test.truth
        return None if codes is None else label_matrix(codes, self.labels)

    def table(self) -> pd.DataFrame:
        """``baseline, f1_micro_human, f1_micro_truth, map_human, map_truth, threshold``
        (truth columns NaN when the split has no ``true_l3``)."""
        references = {name: self.reference(name) for name in ("human", "truth")}
        rows = []
        for baseline in self.baselines:
            row = {"baseline": baseline.name}
            for name, y_true in references.items():
                values = ({} if y_true is None else
                          evaluate(y_true, baseline.scores, baseline.threshold))
                row[f"f1_micro_{name}"] = values.get("f1_micro", np.nan)
                row[f"map_{name}"] = values.get("map", np.nan)
            row["threshold"] = baseline.threshold
            rows.append(row)
        return pd.DataFrame(rows)[["baseline", "f1_micro_human", "f1_micro_truth", "map_human",
                                   "map_truth", "threshold"]]


def score_baselines(prepared: str | Path,
                    surface_forms: str | Path | Mapping[str, Sequence[str]] | None = None,
                    train_on: str = "human", system: str | None = None,
                    train_patients: int | None = None, c: float | Sequence[float] = DEFAULT_C,
                    all_matches: bool = False) -> BaselineRun:
    """Score every baseline on ``prepared/test.parquet`` with the labels of ``labels.json``.

    Each threshold is tuned on ``val.parquet`` against the ``train_on`` codes. ``system``
    defaults to the prepared manifest's code system; ``all_matches`` is :class:`PhraseMatcher`'s.
    ``surface_forms`` is a file for :func:`read_surface_forms` or the ``{category: [phrases]}``
    mapping itself (e.g. :func:`medcoding.cohort.synthetic.language.surface_forms`).
    ``c`` is :func:`fit_tfidf_lr`'s, or several values: one model is fitted for each and the one
    with the best validation micro F1 (at its own tuned threshold) is scored. The scores can go to
    :func:`medcoding.evaluation.bootstrap_ci` with ``run.test.patient_ids`` as groups.
    """
    if train_on not in TARGETS:
        raise ValueError(f"train_on {train_on!r} is not one of {sorted(TARGETS)}")
    prepared = Path(prepared)
    if not (prepared / "labels.json").exists():
        raise FileNotFoundError(f"{prepared / 'labels.json'} does not exist; fix: pass a directory "
                                "written by `medcoding prepare`")
    labels = list(read_json(prepared / "labels.json")["l3"])
    if system is None:
        manifest = prepared / "manifest.json"
        system = read_json(manifest).get("code_system", "who") if manifest.exists() else "who"
    train = read_split(prepared / "train.parquet", train_patients)
    val, test = read_split(prepared / "val.parquet"), read_split(prepared / "test.parquet")
    y_val = label_matrix(val.target(train_on), labels)
    train.target(train_on)  # fails early, with the fix, when the truth is asked for but absent
    found = []

    def add(name: str, scores_val: np.ndarray, scores_test: np.ndarray) -> None:
        found.append(BaselineScores(name, tune_threshold(y_val, scores_val), scores_test))

    shares = label_shares(train.target(train_on), labels)
    add("frequency prior", frequency_scores(shares, len(val.texts)),
        frequency_scores(shares, len(test.texts)))
    matchers = {"ICD-10 title dictionary": icd_title_phrases(labels, system)}
    if surface_forms is not None:
        matchers["surface-form dictionary"] = (
            dict(surface_forms) if isinstance(surface_forms, Mapping)
            else read_surface_forms(surface_forms))
    for name, phrases in matchers.items():
        matcher = PhraseMatcher(phrases, labels, all_matches)
        add(name, matcher.scores(val.texts), matcher.scores(test.texts))
    best = None
    for value in np.atleast_1d(np.asarray(c, dtype=np.float64)):
        model = fit_tfidf_lr(train.texts, train.target(train_on), labels, c=float(value))
        scores_val = model.scores(val.texts)
        threshold = tune_threshold(y_val, scores_val)
        f1 = evaluate(y_val, scores_val, threshold)["f1_micro"]
        if best is None or f1 > best[0]:
            best = (f1, value, threshold, model)
    _, value, threshold, model = best
    found.append(BaselineScores(f"TF-IDF + LR ({train_on}, C={value:g})", threshold,
                                model.scores(test.texts)))
    return BaselineRun(labels, test, train_on, found)


def run_baselines(prepared: str | Path, surface_forms: str | Path | None = None,
                  train_on: str = "human", **options) -> pd.DataFrame:
    """:func:`score_baselines`' table: one row per baseline (see :meth:`BaselineRun.table`)."""
    return score_baselines(prepared, surface_forms, train_on, **options).table()


def format_table(table: pd.DataFrame) -> str:
    """The baseline table for the terminal (— where the split has no truth)."""
    shown = table.copy()
    for column in shown.columns[1:]:
        shown[column] = shown[column].map(lambda v: "—" if pd.isna(v) else f"{v:.3f}")
    return shown.to_string(index=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="medcoding baselines",
        description="Score the no-learning and shallow baselines (frequency prior, ICD-10 title "
                    "dictionary, optional surface-form dictionary, TF-IDF + logistic "
                    "regression) on a prepared directory's test split, with the threshold "
                    "tuned on validation. Level 3 (categories).")
    parser.add_argument("--prepared", required=True, type=Path,
                        help="directory written by `medcoding prepare`")
    parser.add_argument("--surface-forms", type=Path, default=None,
                        help='JSON {"E66": ["obesity", ...], ...} for a second dictionary matcher')
    parser.add_argument("--train-on", choices=sorted(TARGETS), default="human",
                        help="codes the prior and TF-IDF + LR learn from and the thresholds are "
                             "tuned on: human (codes_l3) or truth (true_l3, synthetic cohorts)")
    parser.add_argument("--train-patients", type=int, default=None,
                        help="train on the first N training patients only (patient_rank < N)")
    parser.add_argument("--c", type=float, nargs="+", default=list(DEFAULT_C),
                        help="inverse regularisation strengths of the logistic regressions to "
                             "try; the best on validation is kept (default: "
                             f"{' '.join(f'{c:g}' for c in DEFAULT_C)})")
    parser.add_argument("--all-matches", action="store_true",
                        help="dictionaries count every phrase occurrence, also one inside a "
                             "longer phrase (default: the longest phrase at each place)")
    parser.add_argument("--csv", type=Path, default=None, help="also write the table as CSV")
    args = parser.parse_args(argv)
    try:
        table = run_baselines(args.prepared, args.surface_forms, args.train_on,
                              train_patients=args.train_patients, c=args.c,
                              all_matches=args.all_matches)
    except (ValueError, FileNotFoundError) as error:
        print(f"medcoding baselines: {error}", file=sys.stderr)
        return 2
    print(f"test split of {args.prepared}, level 3, trained on {args.train_on} codes; "
          "thresholds tuned on validation")
    print(format_table(table))
    if args.csv is not None:
        from medcoding.io import write_csv

        write_csv(args.csv, table)
        print(f"wrote {args.csv}")
    return 0


"""The baselines: hand-checked matching and priors, learnable fixtures, the command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from prepared_fixture import write_prepared

from medcoding import baselines
from medcoding.baselines import (
    PhraseMatcher,
    fit_tfidf_lr,
    frequency_scores,
    icd_title_phrases,
    label_shares,
    read_surface_forms,
    run_baselines,
    score_baselines,
)
from medcoding.cohort.preprocess import PrepareConfig, prepare
from medcoding.cohort.synthetic import generate
from medcoding.evaluation import bootstrap_ci
from medcoding.metrics import evaluate, label_matrix

LABELS = ["E11", "E14", "I50", "I10"]
PHRASES = {"E11": ["type 2 diabetes mellitus", "T2DM"], "E14": ["diabetes mellitus"],
           "I50": ["HF", "heart failure"], "I10": ["hypertension"], "J18": ["pneumonia"]}


def test_matcher_is_case_blind_respects_word_boundaries_and_takes_the_longest_phrase():
    matcher = PhraseMatcher(PHRASES, LABELS)
    texts = [
        "Known TYPE 2  diabetes\nmellitus.",  # E11 only: the longer phrase wins
        "Diabetes mellitus, diet treated; no HF.",  # E14 and I50 (negation is not read)
        "HFpEF on echo; t2dm-like picture",  # no HF inside HFpEF; T2DM is its own token
        "Pneumonia and hypertensionx",  # J18 is no label; hypertensionx is another word
        "",
    ]
    expected = np.array([[1, 0, 0, 0], [0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
                        dtype=np.float32)
    np.testing.assert_array_equal(matcher.scores(texts), expected)
    assert matcher.n_phrases == 6  # J18's phrase is left out


def test_all_matches_also_counts_phrases_inside_longer_ones():
    matcher = PhraseMatcher(PHRASES, LABELS, all_matches=True)
    texts = ["Known type 2 diabetes mellitus.", "heart failure", "T2DM"]
    np.testing.assert_array_equal(matcher.scores(texts),
                                  [[1, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]])


def test_matcher_scores_a_phrase_for_every_label_that_owns_it():
    matcher = PhraseMatcher({"E11": ["diabetes"], "E14": ["diabetes"]}, ["E11", "E14"])
    np.testing.assert_array_equal(matcher.scores(["diabetes"]), [[1, 1]])


def test_icd_title_phrases_hold_category_and_full_code_titles():
    phrases = icd_title_phrases(["E11", "I10", "XYZ", "E11.9"])
    assert set(phrases) == {"E11", "I10"}  # not a category: no phrases
    assert "Type 2 diabetes mellitus" in phrases["E11"]
    assert "Type 2 diabetes mellitus without complications" in phrases["E11"]
    assert phrases["I10"] == ["Essential (primary) hypertension"]
    matcher = PhraseMatcher(phrases, ["E11", "I10"])
    assert matcher.scores(["Discharge diagnosis: essential (primary) hypertension."]).tolist() \
        == [[0.0, 1.0]]


def test_surface_forms_are_read_by_category_and_bad_keys_are_named(tmp_path):
    path = tmp_path / "forms.json"
    path.write_text(json.dumps({"E11.9": ["T2DM"], "E11": ["type 2 diabetes"], "DI10": ["HTN"]}))
    assert read_surface_forms(path) == {"E11": ["T2DM", "type 2 diabetes"], "I10": ["HTN"]}
    path.write_text(json.dumps({"obesity": ["fat"], "E66": ["obese"]}))
    with pytest.raises(ValueError, match=r"forms\.json: 1 key\(s\) are no ICD-10 codes.*obesity"):
        read_surface_forms(path)
    path.write_text(json.dumps({"E66": "obese"}))
    with pytest.raises(ValueError, match="must map to a list of strings"):
        read_surface_forms(path)


def test_frequency_prior_is_the_training_share_for_every_course():
    shares = label_shares([["E11", "I10"], ["I10"], ["I10", "I10"], []], LABELS)
    np.testing.assert_allclose(shares, [0.25, 0.0, 0.0, 0.75])
    scores = frequency_scores(shares, 3)
    assert scores.shape == (3, 4) and scores.dtype == np.float32
    np.testing.assert_allclose(scores[2], [0.25, 0.0, 0.0, 0.75])
    # one threshold between the two shares predicts I10 alone for every course
    values = evaluate(label_matrix([["I10"], ["I10", "E11"], []], LABELS), scores, 0.5)
    assert values["f1_micro"] == pytest.approx(2 * 2 / (3 + 3))


def test_tfidf_lr_learns_150_labels_from_their_words():
    """More than 127 labels: a target stored as int8 came back with its columns reordered."""
    rng = np.random.default_rng(0)
    labels = [f"A{i:02d}" if i < 100 else f"B{i - 100:02d}" for i in range(150)]
    texts, codes = [], []
    for _ in range(900):
        chosen = sorted(rng.choice(len(labels), size=2, replace=False))
        texts.append(" ".join([f"word{c}" for c in chosen] + ["patient", "seen", "today"]))
        codes.append([labels[c] for c in chosen])
    model = fit_tfidf_lr(texts[:600], codes[:600], labels + ["Z99"], c=10.0)
    scores = model.scores(texts[600:])  # [300, 151]
    assert scores.shape == (300, 151)
    assert float(scores[:, -1].max()) == 0.0  # no training course: a constant 0
    truth = label_matrix(codes[600:], labels + ["Z99"])
    assert evaluate(truth, scores, 0.2)["f1_micro"] > 0.9


def test_baselines_on_the_prepared_fixture_without_truth(tmp_path):
    prepared = write_prepared(tmp_path / "prepared")
    table = run_baselines(prepared, c=100.0)
    assert table["baseline"].tolist() == ["frequency prior", "ICD-10 title dictionary",
                                          "TF-IDF + LR (human, C=100)"]
    assert table["f1_micro_truth"].isna().all() and table["map_truth"].isna().all()
    by_name = table.set_index("baseline")
    # the fixture's codes hide behind made-up trigger words: only the learner finds them
    assert by_name.loc["ICD-10 title dictionary", "f1_micro_human"] == 0.0
    assert by_name.loc["TF-IDF + LR (human, C=100)", "f1_micro_human"] > \
        by_name.loc["frequency prior", "f1_micro_human"] + 0.1
    assert by_name.loc["ICD-10 title dictionary", "threshold"] == 0.5
    with pytest.raises(ValueError, match="--train-on truth needs .*true_l3"):
        run_baselines(prepared, train_on="truth")


@pytest.fixture(scope="module")
def synthetic_prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("baselines")
    generate(500, 3, root / "data", progress=False)
    config = PrepareConfig(min_category_count=0, test_size=150)
    prepare(root / "data", root / "prepared", config)
    return root / "prepared"


def test_baselines_on_a_synthetic_cohort_score_truth_and_surface_forms(synthetic_prepared,
                                                                      tmp_path):
    forms = tmp_path / "forms.json"
    forms.write_text(json.dumps({"I10": ["hypertension", "HTN", "amlodipine"],
                                 "E11": ["type 2 diabetes", "T2DM", "metformin"]}))
    run = score_baselines(synthetic_prepared, forms, train_on="truth", c=[1.0, 10.0])
    table = run.table()
    assert table["baseline"].tolist() == ["frequency prior", "ICD-10 title dictionary",
                                          "surface-form dictionary", "TF-IDF + LR (truth, C=10)"]
    values = table.drop(columns=["baseline", "threshold"]).to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()
    by_name = table.set_index("baseline")
    # the v2 generator writes the WHO title only as a rare variant: looking titles up is weak
    assert 0 < by_name.loc["ICD-10 title dictionary", "f1_micro_truth"] < 0.5
    # two categories only: precise where it fires, but most true codes are other categories
    test = pd.read_parquet(synthetic_prepared / "test.parquet")
    labels = json.loads((synthetic_prepared / "labels.json").read_text())["l3"]
    matcher = PhraseMatcher(read_surface_forms(forms), labels)
    expected = evaluate(label_matrix(test["true_l3"].map(list), labels),
                        matcher.scores(test["text"]), 0.5)
    assert by_name.loc["surface-form dictionary", "f1_micro_truth"] == pytest.approx(
        expected["f1_micro"])
    # the scores take the book's patient-level bootstrap intervals
    lr = run.baselines[-1]
    intervals = bootstrap_ci(run.reference("truth"), lr.scores, run.test.patient_ids,
                             n_resamples=30, threshold=lr.threshold).set_index("metric")
    assert intervals.loc["f1_micro", "estimate"] == pytest.approx(
        by_name.loc["TF-IDF + LR (truth, C=10)", "f1_micro_truth"])
    assert intervals.loc["f1_micro", "low"] < intervals.loc["f1_micro", "high"]


def test_command_prints_the_table_and_refuses_a_missing_directory(tmp_path, capsys):
    prepared = write_prepared(tmp_path / "prepared", n_train=60, n_val=20, n_test=20)
    csv = tmp_path / "t.csv"
    assert baselines.main(["--prepared", str(prepared), "--csv", str(csv), "--c", "1", "1000"]) == 0
    out = capsys.readouterr().out
    assert "TF-IDF + LR (human, C=1000)" in out and "thresholds tuned on validation" in out
    assert "—" in out  # no truth in this split
    assert len(pd.read_csv(csv)) == 3
    assert baselines.main(["--prepared", str(tmp_path / "nothing")]) == 2
    assert "nothing/labels.json does not exist; fix:" in capsys.readouterr().err


def test_write_baselines_saves_predictions_the_book_loads_like_the_model(synthetic_prepared,
                                                                         tmp_path):
    from medcoding.analysis import comparison
    from medcoding.cohort.synthetic import language
    from medcoding.runs import load_predictions

    run = tmp_path / "run"
    run.mkdir()
    (run / "prepared").symlink_to(synthetic_prepared)
    written = comparison.write_baselines(run, language.surface_forms())
    assert written["directory"].tolist() == list(comparison.BASELINE_DIRS.values())
    test = pd.read_parquet(synthetic_prepared / "test.parquet", columns=["course_id"])
    labels = json.loads((synthetic_prepared / "labels.json").read_text())["l3"]
    for directory, threshold in zip(written["directory"], written["threshold"], strict=True):
        saved = load_predictions(run / "predictions" / directory, "test")
        assert list(saved.course_ids) == test["course_id"].tolist()
        assert list(saved.labels) == labels
        meta = json.loads((run / "predictions" / directory / "baseline.json").read_text())
        assert meta["threshold"] == threshold and meta["train_on"] == "human"
    prior = load_predictions(run / "predictions" / "baseline_prior", "test")
    assert (np.asarray(prior.scores) == np.asarray(prior.scores)[0]).all()  # one ranking for all

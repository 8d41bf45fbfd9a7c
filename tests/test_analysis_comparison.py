"""medcoding.analysis.comparison: PLM-CA beside baselines with paired bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medcoding.analysis import comparison, results
from medcoding.analysis.comparison import Scored
from medcoding.analysis.inputs import from_frames
from medcoding.evaluation import bootstrap_ci
from medcoding.metrics import evaluate

LABELS = ["E11", "I10", "I50", "J18"]


def split(n: int = 40, synthetic: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    human = [[LABELS[i % 4]] + ([LABELS[(i + 1) % 4]] if i % 3 == 0 else []) for i in range(n)]
    frame = pd.DataFrame({
        "course_id": [f"c{i}" for i in range(n)],
        "patient_id": [f"p{i // 2}" for i in range(n)],  # two courses per patient
        "specialty": ["medicine"] * n, "department": ["M1"] * n, "text": ["x"] * n,
        "codes_l3": human, "primary_l3": [codes[0] for codes in human],
    })
    if synthetic:
        frame["true_l3"] = [codes + ([LABELS[2]] if rng.random() < 0.3 else [])
                            for codes in human]
    return frame


def models(synthetic: bool = True) -> dict[str, Scored]:
    frame = split(synthetic=synthetic)
    rng = np.random.default_rng(0)
    y = np.array([[label in codes for label in LABELS] for codes in frame["codes_l3"]])
    good = np.clip(y * 0.7 + rng.random(y.shape) * 0.4, 0, 1).astype(np.float32)
    noisy = rng.random(y.shape).astype(np.float32)
    return {
        "PLM-CA": Scored("PLM-CA", from_frames(frame, good, LABELS), 0.5),
        "coin": Scored("coin", from_frames(frame, noisy, LABELS), 0.5),
        "itself": Scored("itself", from_frames(frame, good, LABELS), 0.5),
    }


def test_metric_table_is_bootstrap_ci_for_every_model_and_reference():
    scored = models()
    table = comparison.metric_table(scored, n_resamples=50, seed=4)
    assert set(table["reference"]) == {"human", "truth"}
    assert table["model"].drop_duplicates().tolist() == ["PLM-CA", "coin", "itself"]
    row = table[(table["model"] == "coin") & (table["reference"] == "truth")
                & (table["metric"] == "map")].iloc[0]
    inputs = scored["coin"].inputs
    expected = bootstrap_ci(inputs.reference("truth"), inputs.scores,
                            groups=inputs.split["patient_id"], n_resamples=50, seed=4,
                            threshold=0.5).set_index("metric").loc["map"]
    assert (row["estimate"], row["low"], row["high"]) == pytest.approx(
        (expected["estimate"], expected["low"], expected["high"]))


def test_paired_differences_are_exact_and_pair_the_resamples():
    scored = models()
    table = comparison.paired_differences(scored, n_resamples=200, seed=1)
    human = table[table["reference"] == "human"].set_index(["model", "metric"])
    coin = human.loc[("coin", "f1_micro")]
    y = scored["PLM-CA"].inputs.y_human
    expected = (evaluate(y, scored["PLM-CA"].inputs.scores, 0.5)["f1_micro"]
                - evaluate(y, scored["coin"].inputs.scores, 0.5)["f1_micro"])
    assert coin["difference"] == pytest.approx(expected)
    assert coin["low"] > 0  # the model with signal beats the coin on every resample's draw
    same = human.loc[("itself", "f1_micro")]
    # the same scores on the same resampled patients: the difference is 0 on every resample
    assert (same["difference"], same["low"], same["high"]) == pytest.approx((0, 0, 0))
    sentence = comparison.reading(table)
    assert sentence.startswith("Against the human codes: PLM-CA beat the coin by")
    assert "cannot tell PLM-CA and the itself apart" in sentence
    assert "Against the true codes:" in sentence


def test_a_cohort_without_truth_has_human_rows_only():
    scored = models(synthetic=False)
    assert comparison.references(scored) == ["human"]
    table = comparison.paired_differences(scored, n_resamples=20, seed=1)
    assert set(table["reference"]) == {"human"}
    assert "true codes" not in comparison.reading(table)


def test_paired_differences_refuse_models_on_other_courses():
    scored = models()
    other = split().iloc[::-1].reset_index(drop=True)
    scored["shuffled"] = Scored("shuffled", from_frames(
        other, np.zeros((len(other), 4), dtype=np.float32), LABELS), 0.5)
    with pytest.raises(ValueError, match="other courses"):
        comparison.paired_differences(scored, n_resamples=10, seed=1)


def test_headline_lays_out_one_row_per_model():
    table = comparison.metric_table(models(), n_resamples=20, seed=1)
    wide = comparison.headline(table)
    assert wide.columns.tolist() == ["model", "f1_micro vs human", "f1_micro vs truth"]
    assert wide["model"].tolist() == ["PLM-CA", "coin", "itself"]
    assert wide.iloc[0, 1].count(" to ") == 1


def test_baseline_directory_names():
    assert comparison.baseline_directory("TF-IDF + LR (human, C=100)") == "baseline_tfidf_lr"
    with pytest.raises(ValueError, match="unknown baseline"):
        comparison.baseline_directory("GPT")


def test_human_vs_truth_is_empty_without_truth_rows():
    frame = pd.DataFrame({"level": ["3"], "metric": ["f1_micro"], "reference": ["human"],
                          "estimate": [0.5]})
    assert results.human_vs_truth(frame).empty
    both = pd.concat([frame, frame.assign(reference="truth", estimate=0.7)])
    gap = results.human_vs_truth(both)
    assert gap["truth_minus_human"].tolist() == pytest.approx([0.2])


def test_summary_text_is_generated_from_the_results_tables(tmp_path, capsys):
    scored = models()
    (tmp_path / "tables").mkdir()
    comparison.metric_table(scored, 20, 1).to_csv(tmp_path / "tables" / "results_baselines.csv",
                                                  index=False)
    differences = comparison.paired_differences(scored, 20, 1)
    differences.to_csv(tmp_path / "tables" / "results_baseline_differences.csv", index=False)
    assert comparison.main([str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == "| model | f1_micro vs human | f1_micro vs truth |"
    assert printed.count("\n| ") == 3  # three models under the separator
    assert comparison.reading(differences) in printed
    assert comparison.reading(differences, "map", "MAP") in printed
    assert comparison.main([str(tmp_path / "missing")]) == 1
    assert "run the results chapter" in capsys.readouterr().err

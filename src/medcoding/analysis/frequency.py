"""Figure 2: per-code agreement against training frequency (2a) and secondary share (2b).

The study finds mean F1 rising with a code's training frequency (log scale), 20.1% of codes never
predicted, and, among codes with more than 1,000 training occurrences, lower F1 for codes that are
mostly secondary diagnoses (mean below 0.5 above 80% secondary, above 0.7 for mostly primary).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from medcoding import metrics
from medcoding.analysis.comparison import MODEL
from medcoding.analysis.inputs import AnalysisInputs

SHARE_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def code_table(
    inputs: AnalysisInputs, threshold: float | np.ndarray = 0.5, reference: str = "human"
) -> pd.DataFrame:
    """One row per label: test support, predictions, F1 and training frequency.

    Columns ``label, support, predicted, tp, precision, recall, f1, train_count,
    train_secondary, secondary_share``. F1 is NaN for labels without test support (they have no
    F1 to average); ``predicted`` counts the test courses where the label is predicted.
    """
    table = metrics.per_label(inputs.reference(reference), inputs.scores, threshold,
                              inputs.labels)
    table = table.merge(inputs.train_frequency(), on="label", how="left", validate="one_to_one")
    table.loc[table["support"] == 0, "f1"] = np.nan
    return table


def never_predicted_share(codes: pd.DataFrame) -> float:
    """Share of the label vocabulary that the model predicts for no test course."""
    if codes.empty:
        return float("nan")
    return float((codes["predicted"] == 0).mean())


def frequency_bins(codes: pd.DataFrame, per_decade: int = 1) -> pd.DataFrame:
    """Mean F1 of the codes with test support, binned by training count on a log scale.

    Bin edges are ``10 ** (i / per_decade)``; a code with count ``c`` falls in
    ``[low, high)``. Columns ``bin_low, bin_high, codes, mean_f1, never_predicted_share``.
    Codes with zero training count are left out (they cannot be labels).
    """
    scored = codes[(codes["train_count"] > 0) & codes["f1"].notna()]
    columns = ["bin_low", "bin_high", "codes", "mean_f1", "never_predicted_share"]
    if scored.empty:
        return pd.DataFrame(columns=columns)
    exponent = np.floor(np.log10(scored["train_count"].to_numpy()) * per_decade + 1e-9)
    low = np.power(10.0, exponent / per_decade)
    high = np.power(10.0, (exponent + 1) / per_decade)
    frame = pd.DataFrame({"bin_low": low, "bin_high": high, "f1": scored["f1"].to_numpy(),
                          "never": (scored["predicted"] == 0).to_numpy()})
    table = (frame.groupby(["bin_low", "bin_high"])
             .agg(codes=("f1", "size"), mean_f1=("f1", "mean"),
                  never_predicted_share=("never", "mean"))
             .reset_index())
    return table[columns]


def secondary_table(codes: pd.DataFrame, min_train_count: int = 1000) -> pd.DataFrame:
    """Codes with more than ``min_train_count`` training occurrences and test support (Fig. 2b).

    Columns ``label, train_count, secondary_share, f1``, sorted by secondary share.
    """
    keep = (codes["train_count"] > min_train_count) & codes["f1"].notna()
    table = codes.loc[keep, ["label", "train_count", "secondary_share", "f1"]]
    return table.sort_values(["secondary_share", "label"], ignore_index=True)


def secondary_bins(secondary: pd.DataFrame, edges=SHARE_EDGES) -> pd.DataFrame:
    """Mean F1 per secondary-share bin ``[low, high)`` (the last bin includes 1.0).

    Columns ``share_low, share_high, codes, mean_f1``; every bin is listed, empty ones with
    ``codes == 0`` and NaN F1.
    """
    edges = np.asarray(edges, dtype=float)
    which = np.clip(np.searchsorted(edges, secondary["secondary_share"].to_numpy(),
                                    side="right") - 1, 0, len(edges) - 2)
    rows = []
    for i in range(len(edges) - 1):
        f1 = secondary["f1"].to_numpy()[which == i]
        rows.append({"share_low": edges[i], "share_high": edges[i + 1], "codes": len(f1),
                     "mean_f1": float(f1.mean()) if len(f1) else float("nan")})
    return pd.DataFrame(rows)


def beside_study(codes: pd.DataFrame, secondary: pd.DataFrame) -> pd.DataFrame:
    """The study's statements on Figure 2 with our value beside each (``statement, study,
    ours``); ``codes`` is :func:`code_table`, ``secondary`` :func:`secondary_table`."""
    from medcoding import study

    scored = codes[codes["f1"].notna() & (codes["train_count"] > 0)]
    frequency, share = study.CODE_FREQUENCY, study.SECONDARY_SHARE
    common = scored[scored["train_count"] > frequency["common_code_training_count"]]
    rare = scored[scored["train_count"] < frequency["rare_code_training_count"]]
    mostly_secondary = secondary[secondary["secondary_share"] > share["mostly_secondary_share"]]
    mostly_primary = secondary[secondary["secondary_share"] < 0.5]

    def mean(frame: pd.DataFrame) -> float:
        return frame["f1"].mean() if len(frame) else np.nan

    return pd.DataFrame([
        {"statement": "codes never predicted", "study": frequency["never_predicted_share"],
         "ours": never_predicted_share(codes)},
        {"statement": f"mean F1, codes with < {frequency['rare_code_training_count']:,} "
                      "training occurrences", "study": np.nan, "ours": mean(rare)},
        {"statement": f"mean F1, codes with > {frequency['common_code_training_count']:,} "
                      "training occurrences (the study: above)",
         "study": frequency["common_code_mean_f1_above"], "ours": mean(common)},
        {"statement": f"mean F1, codes > {share['mostly_secondary_share']:.0%} secondary (the "
                      "study: below)", "study": share["mostly_secondary_mean_f1_below"],
         "ours": mean(mostly_secondary)},
        {"statement": "mean F1, mostly primary codes (the study: above)",
         "study": share["mostly_primary_mean_f1_above"], "ours": mean(mostly_primary)},
    ])


def trends(codes: pd.DataFrame, secondary: pd.DataFrame, n_resamples: int = 1000,
           seed: int = 0) -> pd.DataFrame:
    """Per-code F1 against log10 training frequency (all codes with test support) and against the
    secondary share (codes above the Figure 2b minimum): correlation with a bootstrap interval
    over codes. Columns ``factor, codes, correlation, low, high``."""
    from medcoding.analysis.association import correlation

    scored = codes[codes["f1"].notna() & (codes["train_count"] > 0)]
    rows = []
    for factor, frame, x in [("log10 training frequency", scored,
                              np.log10(scored["train_count"].astype(float))),
                             ("secondary share", secondary, secondary["secondary_share"])]:
        found = correlation(x, frame["f1"], n_resamples, seed)
        rows.append({"factor": factor, "codes": found["n"], "correlation": found["correlation"],
                     "low": found["low"], "high": found["high"]})
    return pd.DataFrame(rows)


def trend_reading(table: pd.DataFrame) -> str:
    """One sentence per trend (:func:`medcoding.readings.association`), beside the study's."""
    from medcoding import readings

    study_direction = {"log10 training frequency": "rises", "secondary share": "falls"}
    parts = []
    for _, row in table.iterrows():
        parts.append(readings.association(
            "per-code F1", f"the {row['factor']}", row["correlation"], row["low"], row["high"],
            fmt=".2f").replace(" (", f" (correlation over {row['codes']} codes: ", 1))
        parts.append(f"In the study it {study_direction[row['factor']]}.")
    return " ".join(parts)


def mechanism_bins(codes: pd.DataFrame, per_decade: int = 1) -> pd.DataFrame:
    """True code occurrences (:func:`medcoding.analysis.mechanisms.true_codes`) per training
    frequency bin: the coder's coded share and the model's top-k share of the coded and the
    uncoded ones, each with a Wilson 95% interval.

    Columns ``bin_low, bin_high, occurrences, coded_share, coded_low, coded_high,
    top_k_coded, top_k_uncoded``.
    """
    from medcoding.analysis.undercoding import wilson_interval

    known = codes[codes["train_count"] > 0]
    edges = 10 ** (np.floor(np.log10(known["train_count"].astype(float)) * per_decade)
                   / per_decade) if len(known) else pd.Series(dtype=float)
    rows = []
    for low in sorted(set(edges)):
        rows_in = known[edges == low]
        coded = rows_in[rows_in["coded"]]
        uncoded = rows_in[~rows_in["coded"]]
        interval = wilson_interval(len(coded), len(rows_in))
        rows.append({"bin_low": low, "bin_high": low * 10 ** (1 / per_decade),
                     "occurrences": len(rows_in), "coded_share": len(coded) / len(rows_in),
                     "coded_low": interval[0], "coded_high": interval[1],
                     "top_k_coded": coded["in_top_k"].mean() if len(coded) else np.nan,
                     "top_k_uncoded": uncoded["in_top_k"].mean() if len(uncoded) else np.nan})
    return pd.DataFrame(rows, columns=["bin_low", "bin_high", "occurrences", "coded_share",
                                       "coded_low", "coded_high", "top_k_coded",
                                       "top_k_uncoded"])


# --------------------------------------------------------------------------- baselines

def bins_by_model(models, per_decade: int = 1, reference: str = "human") -> pd.DataFrame:
    """:func:`frequency_bins` of every model (``models``: name ->
    :class:`medcoding.analysis.comparison.Scored`, each at its own threshold), stacked with a
    leading ``model`` column."""
    frames = [frequency_bins(code_table(scored.inputs, scored.threshold, reference),
                             per_decade).assign(model=name) for name, scored in models.items()]
    table = pd.concat(frames, ignore_index=True)
    return table[["model", *[column for column in table.columns if column != "model"]]]


def trends_by_model(models, min_train_count: int = 1000, n_resamples: int = 1000,
                    seed: int = 0, reference: str = "human") -> pd.DataFrame:
    """:func:`trends` of every text-reading model (the prior, which scores every course alike,
    is left out), stacked with a leading ``model`` column."""
    frames = []
    for name, scored in models.items():
        if not scored.reads_text:
            continue
        codes = code_table(scored.inputs, scored.threshold, reference)
        secondary = secondary_table(codes, min_train_count)
        frames.append(trends(codes, secondary, n_resamples, seed).assign(model=name))
    table = pd.concat(frames, ignore_index=True)
    return table[["model", "factor", "codes", "correlation", "low", "high"]]


def model_trend_reading(table: pd.DataFrame, base: str = MODEL) -> str:
    """Per baseline of :func:`trends_by_model`, whether its per-code F1 follows the same trends
    as ``base``'s. A dictionary learns nothing from the training codes, so what its trends say
    about the data is spelt out only where their intervals (and ``base``'s) support it."""
    from medcoding import readings
    from medcoding.analysis.comparison import called

    def sign(rows: pd.DataFrame, factor: str) -> int:
        row = rows[rows["factor"] == factor]
        return readings.direction(row["low"].iloc[0], row["high"].iloc[0]) if len(row) else 0

    frequency, share = "log10 training frequency", "secondary share"
    base_rows = table[table["model"] == base]
    parts = []
    for name, group in table[table["model"] != base].groupby("model", sort=False):
        for _, row in group.iterrows():
            parts.append(readings.association(
                f"{called(name)}'s per-code F1", f"the {row['factor']}", row["correlation"],
                row["low"], row["high"], fmt=".2f").replace(
                    " (", f" (correlation over {row['codes']} codes: ", 1))
        if "dictionary" not in name:
            continue
        lookup = readings.sentence(called(name))
        if sign(group, frequency) > 0:
            parts.append(f"{lookup} learns nothing from the training codes, so its rise with "
                         "frequency comes with the codes themselves (how plainly the notes name "
                         "them), not with how often a model saw them.")
        elif sign(group, frequency) < 0 and sign(base_rows, frequency) > 0:
            parts.append(f"{lookup} learns nothing from the training codes and finds rare codes "
                         f"better than common ones, so {base}'s rise with frequency comes from "
                         "the number of training examples, not from rare codes being harder to "
                         "find in the notes.")
        if sign(group, share) < 0 and sign(base_rows, share) < 0:
            parts.append(f"{lookup} learns nothing from the coder, yet its F1 against the "
                         "human codes falls with the secondary share as well, so that fall "
                         f"comes with the courses and their coding, not only with what {base} "
                         "learnt.")
    return " ".join(parts)

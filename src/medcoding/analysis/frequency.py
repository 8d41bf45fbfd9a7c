"""Figure 2: per-code agreement against training frequency (2a) and secondary share (2b).

The study finds mean F1 rising with a code's training frequency (log scale), 20.1% of codes never
predicted, and, among codes with more than 1,000 training occurrences, lower F1 for codes that are
mostly secondary diagnoses (mean below 0.5 above 80% secondary, above 0.7 for mostly primary).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from medcoding import metrics
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

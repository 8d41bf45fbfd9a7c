"""The book's figure style: every figure is drawn from a tidy DataFrame by one of these functions.

Each plot function returns the matplotlib Figure; ``save`` writes it as a PNG into
``<run_dir>/figures/`` atomically. Notebooks print the plotted numbers as a rounded table under
each figure, because nbval compares text, not pixels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from medcoding.io import atomic_path
from medcoding.runs import Run

PALETTE = "colorblind"
OURS_COLOR = "#0072B2"
STUDY_COLOR = "#D55E00"
DPI = 110


def apply_style() -> None:
    """The shared look: white grid, colour-blind palette, readable sizes, fixed DPI."""
    sns.set_theme(style="whitegrid", palette=PALETTE, context="notebook")
    plt.rcParams.update(
        {
            "figure.dpi": DPI,
            "savefig.dpi": DPI,
            "figure.figsize": (7.0, 4.2),
            "axes.titleweight": "bold",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "svg.hashsalt": "medcoding",
        }
    )


def _require(df: pd.DataFrame, columns: Sequence[str | None], what: str) -> None:
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise KeyError(
            f"{what}: column(s) {missing} not in the DataFrame (columns: {list(df.columns)})"
        )
    if df.empty:
        raise ValueError(f"{what}: the DataFrame is empty; nothing to draw")


def _finish(ax, title: str | None, xlabel: str | None, ylabel: str | None) -> None:
    legend = ax.get_legend()
    if legend is not None:  # beside the axes, where it hides no data
        ax.legend(handles=legend.legend_handles, labels=[t.get_text() for t in legend.texts],
                  title=legend.get_title().get_text() or None, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), frameon=False)
    if title:
        ax.set_title(title)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    ax.figure.tight_layout()


def dot_plot(
    df: pd.DataFrame,
    x: str,
    y: str,
    *,
    hue: str | None = None,
    sort: bool = True,
    reference: float | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
):
    """Horizontal dot plot, one row per ``y`` category (e.g. specialties), ``x`` numeric.

    ``sort`` orders the rows by ``x`` (largest on top); ``reference`` draws a vertical line.
    """
    _require(df, [x, y, hue], "dot_plot")
    data = df.sort_values(x, ascending=False) if sort else df
    height = max(2.5, 0.28 * data[y].nunique() + 1.2)
    fig, ax = plt.subplots(figsize=(7.0, height))
    sns.stripplot(data=data, x=x, y=y, hue=hue, ax=ax, size=7, jitter=False,
                  order=list(dict.fromkeys(data[y])))
    if reference is not None:
        ax.axvline(reference, color="grey", linestyle="--", linewidth=1)
    _finish(ax, title, xlabel, ylabel)
    return fig


def scatter(
    df: pd.DataFrame,
    x: str,
    y: str,
    *,
    logx: bool = False,
    hue: str | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
):
    """Scatter plot of ``y`` against ``x``, optionally on a log x axis and coloured by ``hue``."""
    _require(df, [x, y, hue], "scatter")
    fig, ax = plt.subplots()
    sns.scatterplot(data=df, x=x, y=y, hue=hue, ax=ax, s=22, alpha=0.7, linewidth=0)
    if logx:
        ax.set_xscale("log")
    _finish(ax, title, xlabel, ylabel)
    return fig


def facet_scatter(
    df: pd.DataFrame,
    x: str,
    y: str,
    facet: str,
    *,
    titles: dict[str, str] | None = None,
    ylabel: str | None = None,
):
    """One scatter panel per ``facet`` value side by side (own x axis, shared y axis)."""
    _require(df, [x, y, facet], "facet_scatter")
    levels = list(dict.fromkeys(df[facet]))
    fig, axes = plt.subplots(1, len(levels), figsize=(3.2 * len(levels) + 0.6, 3.4), sharey=True,
                             squeeze=False)
    for ax, level in zip(axes[0], levels, strict=True):
        rows = df[df[facet] == level]
        ax.scatter(rows[x], rows[y], s=22, alpha=0.7, color=OURS_COLOR, linewidth=0)
        ax.set_xlabel((titles or {}).get(level, str(level)))
    axes[0][0].set_ylabel(ylabel or y)
    fig.tight_layout()
    return fig


def line_plot(
    df: pd.DataFrame,
    x: str,
    y: str,
    *,
    hue: str | None = None,
    logx: bool = False,
    markers: bool = True,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
):
    """Line plot of ``y`` against ``x``, one line per ``hue`` level."""
    _require(df, [x, y, hue], "line_plot")
    fig, ax = plt.subplots()
    sns.lineplot(data=df, x=x, y=y, hue=hue, style=hue, markers=markers, dashes=False, ax=ax,
                 errorbar=None)
    if logx:
        ax.set_xscale("log")
    _finish(ax, title, xlabel, ylabel)
    return fig


def bar_plot(
    df: pd.DataFrame,
    x: str,
    y: str,
    *,
    hue: str | None = None,
    low: str | None = None,
    high: str | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
):
    """Bar plot of ``y`` per ``x`` category, grouped by ``hue``.

    ``low``/``high`` name interval columns drawn as error bars (e.g. bootstrap 95% limits).
    """
    _require(df, [x, y, hue, low, high], "bar_plot")
    x_levels = list(dict.fromkeys(df[x]))
    hue_levels = list(dict.fromkeys(df[hue])) if hue else [None]
    width = 0.8 / len(hue_levels)
    colors = sns.color_palette(PALETTE, len(hue_levels))
    fig, ax = plt.subplots()
    for offset, (level, color) in enumerate(zip(hue_levels, colors, strict=True)):
        rows = df if hue is None else df[df[hue] == level]
        positions = np.array([x_levels.index(value) for value in rows[x]], dtype=float)
        positions += (offset - (len(hue_levels) - 1) / 2) * width
        errors = None
        if low is not None and high is not None:
            errors = np.vstack([rows[y] - rows[low], rows[high] - rows[y]])  # [2, bars]
        ax.bar(positions, rows[y], width=width, color=color, yerr=errors, capsize=3,
               label=None if level is None else str(level))
    ax.set_xticks(range(len(x_levels)), [str(level) for level in x_levels])
    if hue is not None:
        ax.legend(title=hue)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    _finish(ax, title, xlabel, ylabel)
    return fig


def flow_chart(flow: pd.DataFrame, *, title: str | None = "Preprocessing flow"):
    """The preprocessing flow as boxes and arrows (the study's Figure 4 analogue).

    ``flow`` has one row per filter step with ``step``, ``courses_before``, ``courses_removed``,
    ``courses_after`` and, if present, the ``patients_*`` counterparts, a ``name`` (the label
    drawn; else ``step``) and ``enabled`` (steps switched off are not drawn).
    """
    _require(flow, ["step", "courses_before", "courses_removed", "courses_after"], "flow_chart")
    if "enabled" in flow.columns:
        flow = flow[flow["enabled"].astype(bool)]
    label = "name" if "name" in flow.columns else "step"
    has_patients = "patients_after" in flow.columns
    n_steps = len(flow)
    fig, ax = plt.subplots(figsize=(7.5, 1.1 * (n_steps + 1) + 0.4))
    ax.set_xlim(0, 10)
    ax.set_ylim(-n_steps - 0.6, 0.6)
    ax.axis("off")
    box = {"boxstyle": "round,pad=0.35", "facecolor": "#E8F1FA", "edgecolor": OURS_COLOR}
    removed_box = {"boxstyle": "round,pad=0.3", "facecolor": "#FBEDE4", "edgecolor": STUDY_COLOR}

    def count_text(courses: int, patients: int | None) -> str:
        text = f"{courses:,} courses"
        return f"{text}\n{patients:,} patients" if patients is not None else text

    first = flow.iloc[0]
    ax.text(3, 0, "All courses\n" + count_text(
        int(first["courses_before"]), int(first["patients_before"]) if has_patients else None),
        ha="center", va="center", bbox=box, fontsize=9)
    for index, (_, row) in enumerate(flow.iterrows(), start=1):
        ax.annotate("", xy=(3, -index + 0.3), xytext=(3, -index + 0.7),
                    arrowprops={"arrowstyle": "->", "color": "grey"})
        removed = f"{row[label]}\n−{int(row['courses_removed']):,} courses"
        if has_patients and "patients_removed" in flow.columns:
            removed += f", −{int(row['patients_removed']):,} patients"
        ax.text(7.4, -index + 0.5, removed, ha="center", va="center", bbox=removed_box,
                fontsize=8)
        ax.text(3, -index, count_text(
            int(row["courses_after"]), int(row["patients_after"]) if has_patients else None),
            ha="center", va="center", bbox=box, fontsize=9)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def table(frame: pd.DataFrame, run_dir: str | os.PathLike, name: str, digits: int = 3):
    """Write ``frame`` to ``<run_dir>/tables/<name>.csv`` (:meth:`medcoding.runs.Run.write_table`)
    and return it rounded for display.

    The rounded copy is what a notebook shows under a figure: nbval compares these numbers.
    """
    Run(run_dir).write_table(frame, name)
    return frame.round(digits)


def save(fig, run_dir: str | os.PathLike, name: str) -> Path:
    """Write ``fig`` as ``<run_dir>/figures/<name>.png`` atomically; return the path."""
    target = Run(run_dir).figure_path(name)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", metadata={"Software": None})
    return target


def show(fig, run_dir: str | os.PathLike, name: str) -> Path:
    """:func:`save` ``fig``, then show it in the notebook (``plt.show``) and close it; return the
    path. The one call a chapter makes for a figure, above the table of its numbers."""
    target = save(fig, run_dir, name)
    plt.show()
    plt.close(fig)
    return target

"""The study's analyses, one module each, every one returning tidy DataFrames.

- :mod:`~medcoding.analysis.inputs`: one run's split, scores and code matrices (``load_inputs``).
- :mod:`~medcoding.analysis.specialty`: micro F1 per department, median per specialty (Fig. 1).
- :mod:`~medcoding.analysis.frequency`: per-code F1 against training frequency and secondary
  share (Fig. 2a, 2b).
- :mod:`~medcoding.analysis.priority`: Recall@k of primary and secondary codes (Fig. 3).
- :mod:`~medcoding.analysis.undercoding`: boundary sweeps for code ranges, flagged uncoded cases,
  their truth (synthetic) and review sheets.
- :mod:`~medcoding.analysis.documentation`: unspecified diabetes and low-confidence heart failure.
- :mod:`~medcoding.analysis.thresholds`: per-code boundaries tuned on validation.
"""

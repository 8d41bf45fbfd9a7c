"""Explanations of PLM-CA predictions, one job per module:

- :mod:`~medcoding.explain.attribution`: AttInGrad and its two baselines (attention, input
  gradient), token scores mapped to words of the text;
- :mod:`~medcoding.explain.faithfulness`: the comprehensiveness check (delete the top words);
- :mod:`~medcoding.explain.case`: the explorer's data for one course (``build_case``);
- :mod:`~medcoding.explain.gallery`: the gallery of cases, one per phenomenon the synthetic
  generator plants;
- :mod:`~medcoding.explain.cli`: the ``medcoding explain`` command.

Where the course rows and the synthetic flag come from (the run layout) is
:mod:`medcoding.runs`.
"""

from medcoding.explain.attribution import (
    METHODS,
    Encoded,
    Explanation,
    attingrad,
    encode,
    token_attributions,
    word_attributions,
    word_scores,
    word_spans,
)
from medcoding.explain.case import build_case
from medcoding.explain.cli import main
from medcoding.explain.faithfulness import (
    RANDOM,
    comprehensiveness,
    faithfulness_reading,
    sample_courses,
)
from medcoding.explain.gallery import (
    GALLERY_KINDS,
    gallery_pool,
    gallery_reading,
    select_gallery_cases,
)

__all__ = ["GALLERY_KINDS", "METHODS", "RANDOM", "Encoded", "Explanation", "attingrad",
           "build_case", "comprehensiveness", "encode", "faithfulness_reading", "gallery_pool",
           "gallery_reading", "main", "sample_courses", "select_gallery_cases",
           "token_attributions", "word_attributions", "word_scores", "word_spans"]

"""The synthetic population v2: patients who hang together, notes that must be read, a coder who
misses things for reasons.

Submodules, each testable alone: :mod:`.config` (every rate), :mod:`.population` (who has what,
when), :mod:`.language` (templates, names, the surface-form bank), :mod:`.writer` (the record and
the evidence of each true code), :mod:`.coder` (the human codes and the reason for each),
:mod:`.generator` (blocks, streaming, the ``medcoding generate`` CLI). The language resources are
data files in ``data/``.
"""

from medcoding.cohort.synthetic.config import SyntheticConfig
from medcoding.cohort.synthetic.generator import generate, main

__all__ = ["SyntheticConfig", "generate", "main"]

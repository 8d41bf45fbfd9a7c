"""medcoding: automated ICD-10 coding of clinical narratives, as a reproducible analysis book.

``medcoding.PLMCA`` and ``medcoding.PLMCAConfig`` are the model classes of
:mod:`medcoding.model`, imported on first use (so ``import medcoding`` stays free of torch);
importing them registers the ``plmca`` model type with ``AutoConfig`` and ``AutoModel``.
"""

__version__ = "0.1.0"

_MODEL_CLASSES = ("PLMCA", "PLMCAConfig")


def __getattr__(name: str):
    if name in _MODEL_CLASSES:
        from medcoding import model

        return getattr(model, name)
    raise AttributeError(f"module 'medcoding' has no attribute {name!r}")

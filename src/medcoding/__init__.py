"""medcoding: automated ICD-10 coding of clinical narratives, as a reproducible analysis book."""

__version__ = "0.1.0"

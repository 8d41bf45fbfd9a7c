"""Shared test settings: offline, deterministic, small thread pools."""

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MEDCODING_CACHE", tempfile.mkdtemp(prefix="medcoding-test-cache-"))

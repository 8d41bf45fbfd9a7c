"""Atomic artefact writing: all or nothing, ordinary file permissions."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from medcoding.io import atomic_path, write_json
from medcoding.model import save_weights


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def expected_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def test_artefacts_get_umask_permissions_not_mkstemps_0600(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    save_weights(torch.nn.Linear(3, 2), tmp_path / "w.safetensors")  # safetensors recreates files
    assert mode(tmp_path / "a.json") == expected_mode()
    assert mode(tmp_path / "w.safetensors") == expected_mode()


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]

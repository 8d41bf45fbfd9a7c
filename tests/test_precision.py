"""Precision: what `auto` resolves to on each kind of device, and bf16 and fp32 scores agreeing."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from prepared_fixture import one_thread, train_tiny_model

from medcoding import precision
from medcoding.predict import Coder, predict_split
from medcoding.runs import PRECISION_KEY
from medcoding.train import config_from_args, parse_args

AVX2_EPYC = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\nflags\t: avx2\n"
SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: avx2 avx512f avx512_bf16 amx_tile amx_bf16\n"


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    with one_thread():
        yield


def test_cpuinfo_flags_decide_auto(tmp_path):
    (tmp_path / "avx2").write_text(AVX2_EPYC)
    (tmp_path / "amx").write_text(SAPPHIRE_RAPIDS)
    avx2 = precision.cpu_flags(tmp_path / "avx2")
    assert {"avx2", "fma"} <= avx2 and "avx512_bf16" not in avx2
    choice = precision.decide("auto", "cpu", avx2)
    assert choice.precision == "fp32" and "10x slower" in choice.reason
    choice = precision.decide("auto", "cpu", precision.cpu_flags(tmp_path / "amx"))
    assert choice.precision == "bf16" and choice.reason.endswith("(amx_bf16, avx512_bf16)")
    assert precision.decide("auto", "cpu", frozenset({"avx512_bf16"})).bf16
    assert precision.cpu_flags(tmp_path / "missing") is None
    # no /proc/cpuinfo (macOS, Windows): torch's own probe decides
    assert precision.decide("auto", "cpu", None, torch_probe=True).precision == "bf16"
    assert precision.decide("auto", "cpu", None, torch_probe=False).precision == "fp32"


def test_a_onednn_isa_cap_below_avx512_bf16_makes_auto_fp32(tmp_path, monkeypatch):
    (tmp_path / "amx").write_text(SAPPHIRE_RAPIDS)
    amx = precision.cpu_flags(tmp_path / "amx")
    held = precision.decide("auto", "cpu", amx, isa_cap="AVX2")
    assert held.precision == "fp32" and "AVX2" in held.reason and "emulated" in held.reason
    assert precision.decide("auto", "cpu", amx, isa_cap="AVX512_CORE_AMX").bf16  # not below
    assert precision.decide("auto", "cpu", amx, isa_cap="SOMETHING_NEW").bf16  # unknown: flags
    assert precision.decide("bf16", "cpu", amx, isa_cap="AVX2").bf16  # asked for: given
    assert precision.onednn_isa_cap({"DNNL_MAX_CPU_ISA": " avx2 "}) == "AVX2"
    assert precision.onednn_isa_cap({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
                                     "DNNL_MAX_CPU_ISA": "AVX2"}) == "AVX512_CORE"
    assert precision.onednn_isa_cap({"ONEDNN_MAX_CPU_ISA": ""}) is None
    # resolve() on this machine reads the variable: held to AVX2, auto is float32 whatever the CPU
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert precision.resolve("auto", "cpu").precision == "fp32"


def test_explicit_choices_gpus_and_bad_values():
    avx2 = frozenset({"avx2"})
    assert precision.decide("bf16", "cpu", avx2) == precision.Choice("bf16", "requested")
    assert precision.decide("fp32", "cuda", cuda_bf16=True).precision == "fp32"
    assert precision.decide("auto", "cuda", cuda_bf16=True).precision == "bf16"
    assert precision.decide("auto", "cuda", cuda_bf16=False).precision == "fp32"
    assert precision.decide("auto", "mps").precision == "fp32"
    with pytest.raises(ValueError, match="one of"):
        precision.decide("fp16", "cpu", avx2)
    with pytest.raises(ValueError, match="resolved precision"):
        precision.autocast("auto", "cpu")
    assert config_from_args(parse_args(["--data", "d", "--out", "o", "--no-bf16"])).precision == (
        "fp32")
    assert config_from_args(parse_args(["--data", "d", "--out", "o"])).precision == "auto"


def test_this_machine_resolves_from_its_flags():
    flags = precision.cpu_flags()
    if flags is None:
        pytest.skip("no /proc/cpuinfo here")
    held_below_bf16 = precision.onednn_isa_cap() in precision.ISA_CAPS_WITHOUT_BF16
    expected = "bf16" if flags & precision.NATIVE_BF16_FLAGS and not held_below_bf16 else "fp32"
    assert precision.resolve("auto", "cpu").precision == expected


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("precision"), n_test=24, precision="fp32")


def test_model_records_its_precision_and_bf16_scores_agree_with_fp32(trained, tmp_path):
    config = json.loads((trained / "model" / "config.json").read_text())
    assert config["precision"] == "fp32"
    test = pd.read_parquet(trained / "prepared" / "test.parquet")
    fp32 = Coder.from_pretrained(trained / "model", precision="fp32")
    bf16 = Coder.from_pretrained(trained / "model", precision="bf16")
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    exact, rounded = fp32.score(test), bf16.score(test)
    assert exact.std() > 0.1  # a trained model: scores spread between 0 and 1
    assert not np.array_equal(exact, rounded)  # bf16 really ran
    assert np.abs(exact - rounded).max() < 0.01  # measured: 3e-4
    assert np.abs(exact - rounded).mean() < 0.002
    # the same codes above 0.5 and the same best code for (nearly) every course
    assert ((exact >= 0.5) == (rounded >= 0.5)).mean() > 0.98
    assert (exact.argmax(1) == rounded.argmax(1)).mean() >= 0.9
    predict_split(trained / "model", trained / "prepared", "test", tmp_path, bf16)
    import pyarrow.parquet as pq

    assert pq.read_schema(tmp_path / "test.parquet").metadata[PRECISION_KEY] == b"bf16"


def test_autocast_runs_matrix_products_in_bfloat16():
    weight = torch.randn(8, 8)
    with precision.autocast("bf16", "cpu"):
        assert (torch.randn(2, 8) @ weight).dtype == torch.bfloat16
    with precision.autocast("fp32", "cpu"):
        assert (torch.randn(2, 8) @ weight).dtype == torch.float32

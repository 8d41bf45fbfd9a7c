"""Numeric precision of training and scoring: bfloat16 autocast where native, else float32.

``precision`` is ``"auto"``, ``"bf16"`` or ``"fp32"`` everywhere it is asked for
(``TrainConfig.precision``, ``Coder``, ``score_token_arrays``, ``--precision``). ``auto`` picks
bfloat16 autocast only where it runs natively:

- CUDA: when ``torch.cuda.is_bf16_supported()`` (Ampere and later);
- CPU: when the processor has AVX-512 BF16 or AMX-BF16 (``/proc/cpuinfo`` flags ``avx512_bf16``,
  ``amx_bf16``, or torch's own CPU probe where ``/proc/cpuinfo`` is absent), unless
  ``ONEDNN_MAX_CPU_ISA`` (or the older ``DNNL_MAX_CPU_ISA``) holds oneDNN to an instruction set
  below AVX-512 BF16, such as ``AVX2``: oneDNN then emulates bfloat16 as on a CPU without it.

Everywhere else ``auto`` is float32: on a CPU without native bfloat16, bf16 autocast emulates
each matrix product and runs about ten times slower than float32 (MiniLM forward and backward on
an AVX2 EPYC: ~52 real tokens/s per thread in bf16 against ~550 in float32). Scores of the two
agree to about two decimals (``tests/test_precision.py``), so a model trained in one may be scored
in the other; the precision actually used is written into the model's ``config.json``
(``precision``), the prediction files' metadata and the pipeline's step records.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

PRECISIONS = ("auto", "bf16", "fp32")
#: /proc/cpuinfo flags of x86 CPUs that multiply bfloat16 matrices natively
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
#: values of ONEDNN_MAX_CPU_ISA that hold oneDNN below AVX-512 BF16 (its bfloat16 kernels)
ISA_CAPS_WITHOUT_BF16 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2",
                                   "AVX512_CORE", "AVX512_CORE_VNNI"})
ISA_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


@dataclass(frozen=True)
class Choice:
    """The resolved precision (``bf16`` or ``fp32``) and why it was chosen."""

    precision: str
    reason: str

    @property
    def bf16(self) -> bool:
        return self.precision == "bf16"

    def to_dict(self) -> dict:
        return {"precision": self.precision, "reason": self.reason}


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str] | None:
    """The CPU feature flags in ``cpuinfo`` (``None`` where the file cannot be read)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return frozenset(flags)


def torch_cpu_bf16() -> bool:
    """torch's own probe of AVX-512 BF16 / AMX (x86 only; ``False`` where it has none)."""
    probes = [getattr(torch.cpu, name, None)
              for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(probe()) for probe in probes if probe is not None)


def onednn_isa_cap(environ: Mapping[str, str] = os.environ) -> str | None:
    """The instruction set oneDNN is capped at (``ONEDNN_MAX_CPU_ISA``, ``DNNL_MAX_CPU_ISA``)."""
    for variable in ISA_CAP_VARIABLES:
        value = environ.get(variable, "").strip().upper()
        if value:
            return value
    return None


def decide(requested: str, device_type: str, flags: frozenset[str] | None = None,
           cuda_bf16: bool = False, torch_probe: bool = False,
           isa_cap: str | None = None) -> Choice:
    """Resolve ``requested`` for a device; pure, so the decision is tested without the hardware.

    ``flags`` are the CPU's feature flags (``None``: unknown, then ``torch_probe`` decides);
    ``cuda_bf16`` whether the CUDA device supports bfloat16; ``isa_cap`` the instruction set
    oneDNN is held to (``ONEDNN_MAX_CPU_ISA``; ``None``: not capped).
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {requested!r}")
    if requested != "auto":
        return Choice(requested, "requested")
    if device_type == "cuda":
        return (Choice("bf16", "CUDA device supports bfloat16") if cuda_bf16
                else Choice("fp32", "CUDA device without bfloat16"))
    if device_type != "cpu":
        return Choice("fp32", f"{device_type}: bfloat16 not known to be native")
    if isa_cap in ISA_CAPS_WITHOUT_BF16:
        return Choice("fp32", f"oneDNN held to {isa_cap} by its MAX_CPU_ISA setting, below "
                      "AVX-512 BF16: bf16 autocast would be emulated, ~10x slower")
    if flags is not None:
        native = sorted(NATIVE_BF16_FLAGS & flags)
        if native:
            return Choice("bf16", f"CPU has native bfloat16 ({', '.join(native)})")
        return Choice("fp32", "CPU without native bfloat16 (no avx512_bf16/amx_bf16 flag); "
                      "bf16 autocast would be ~10x slower")
    if torch_probe:
        return Choice("bf16", "CPU has native bfloat16 (torch CPU probe)")
    return Choice("fp32", "CPU without native bfloat16 (torch CPU probe)")


def resolve(requested: str = "auto", device: torch.device | str = "cpu") -> Choice:
    """Resolve ``requested`` on this machine's ``device``."""
    device_type = torch.device(device).type
    if device_type == "cuda":
        return decide(requested, "cuda", cuda_bf16=torch.cuda.is_bf16_supported())
    if requested != "auto" or device_type != "cpu":
        return decide(requested, device_type)
    flags = cpu_flags()
    return decide(requested, "cpu", flags, torch_probe=flags is None and torch_cpu_bf16(),
                  isa_cap=onednn_isa_cap())


def default_device() -> torch.device:
    """The device training and scoring use here: the first GPU if there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(precision: str, device: torch.device | str):
    """Autocast context for a *resolved* precision (``bf16`` or ``fp32``) on ``device``."""
    if precision not in ("bf16", "fp32"):
        raise ValueError(f"autocast needs a resolved precision (bf16 or fp32), got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, torch.bfloat16)

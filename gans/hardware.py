"""What this machine's processor is and can do, and the training precision that suits it.

`trainer.precision: auto` in a recipe means bf16-mixed where bfloat16 runs at full speed (a CUDA
GPU that supports it, or an x86 CPU with AVX512_BF16 or AMX) and 32-true elsewhere: on a CPU
without those instructions bfloat16 is emulated and slower than float32. docs/performance.md
has the measured speed and the FID check behind this choice.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

AUTO = "auto"
FAST_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_fields() -> dict:
    """The first processor's fields of /proc/cpuinfo ({} where there is none: macOS, Windows)."""
    fields: dict = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_name() -> str:
    return (cpu_fields().get("model name") or platform.processor() or platform.machine()
            or "unknown CPU")


def cpu_flags() -> set:
    return set(cpu_fields().get("flags", "").split())


def uses_gpu(trainer: dict) -> bool:
    import torch

    accelerator = str(trainer.get("accelerator", "auto"))
    return accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def fast_bf16(trainer: dict) -> bool:
    """Whether the device the trainer section picks runs bfloat16 faster than float32."""
    import torch

    if uses_gpu(trainer):
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return bool(cpu_flags() & set(FAST_BF16_CPU_FLAGS))


def resolve_precision(trainer: dict) -> str:
    """The Lightning precision for the recipe's trainer section (`auto` resolved here)."""
    precision = trainer.get("precision", "32-true")
    if str(precision) != AUTO:
        return precision
    return "bf16-mixed" if fast_bf16(trainer) else "32-true"

"""Whether this CPU computes bf16 fast (AMX or AVX512-BF16 instructions), checked at run time."""

from __future__ import annotations

import os
from pathlib import Path

import torch

CPU_BF16_VARIABLE = "RLPROMPT_INTERP_CPU_BF16"


def cpu_supports_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (AMX or AVX512-BF16), checked at run time:
    there a bf16 matmul runs several times faster than fp32; elsewhere bf16 is emulated and slower.

    ``RLPROMPT_INTERP_CPU_BF16=0`` (or ``1``) overrides the check: the tests pin ``auto`` to fp32 on
    every CPU with it, and run the bf16 path a bf16 CPU takes on any CPU."""
    override = os.environ.get(CPU_BF16_VARIABLE, "").strip().lower()
    if override in ("0", "1", "false", "true", "no", "yes"):
        return override in ("1", "true", "yes")
    checks = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    if all(check is None for check in checks):  # an older torch: read the CPU flags
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
        return "amx_bf16" in flags or "avx512_bf16" in flags
    return any(check() for check in checks if check is not None)

"""The dtype policy: what ``auto`` means on a device, dtype names, and the record every figure carries of
what it was computed with."""

from __future__ import annotations

import torch

from .cpu import cpu_supports_bf16
from .devices import default_device

# Reported accuracies are computed in this dtype unless a user asks for another, so the same prompt
# scores the same on a CPU with bf16 instructions and on one without (bf16 is for training speed).
EVAL_DTYPE = "float32"
# what --dtype auto does, said once for every command and config that takes it
AUTO_DTYPE_HELP = ("auto: bfloat16 where the device computes it fast (a GPU with bf16, a CPU with AMX or "
                   "AVX512-BF16 instructions), float32 elsewhere")


def bf16_available(device: torch.device | str) -> bool:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_supports_bf16()


DTYPE_NAMES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
               "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
# what every --dtype flag accepts (argparse lists them in --help and refuses others before any model loads)
DTYPE_CHOICES = ("auto", *DTYPE_NAMES)


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``auto`` means bf16 where the device computes it fast (a GPU that supports it, a CPU with
    AMX or AVX512-BF16) and fp32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        return torch.bfloat16 if bf16_available(device) else torch.float32
    if dtype not in DTYPE_NAMES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {list(DTYPE_CHOICES)}")
    return DTYPE_NAMES[dtype]


def resolve_dtype_name(dtype: str | None, device: torch.device | None = None) -> str:
    """``auto`` (or any spelling) as the dtype name it means on ``device`` (this process's by default)."""
    return dtype_name(resolve_dtype(dtype, device if device is not None else default_device()))


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``: the name artifacts record and ``--dtype`` accepts."""
    return str(dtype).removeprefix("torch.")


def compute_record(dtype: str | torch.dtype | None, device: str | torch.device | None = None) -> dict:
    """What a number was computed with: the resolved dtype, the device and whether this CPU has bf16
    instructions (so a figure says which kind of machine produced it). Every artifact carries one."""
    device = torch.device(device) if device is not None else default_device()
    return {"dtype": dtype_name(resolve_dtype(dtype, device)), "device": str(device),
            "cpu_bf16": cpu_supports_bf16(), "torch": torch.__version__}


def describe_compute(record: dict) -> str:
    """``compute_record``'s dict as the line reports print: ``float32 on cpu (CPU bf16 instructions: no)``."""
    bf16 = {True: "yes", False: "no"}.get(record.get("cpu_bf16"), "unknown")
    return f"{record.get('dtype')} on {record.get('device')} (CPU bf16 instructions: {bf16})"

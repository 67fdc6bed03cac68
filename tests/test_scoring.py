import pytest
import torch

from rlprompt_interp.models import load_lm
from rlprompt_interp.scoring import batched_next_token_logits, left_pad, next_token_logits

SEQUENCES = [[5, 9, 13, 40, 41, 42, 7], [8, 3], [100, 101, 102, 103]]


def test_left_pad_positions_continue_after_padding():
    ids, mask, pos = left_pad([[1, 2, 3], [4]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [0, 0, 4]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert pos.tolist() == [[0, 1, 2], [0, 0, 0]]


@pytest.mark.parametrize("spec", ["tiny-gpt2", "tiny-llama", "tiny-t5"])
def test_padded_batch_matches_each_sequence_alone(spec):
    lm = load_lm(spec, device="cpu")
    verbalizers = [10, 20, 30]
    batch = next_token_logits(lm, SEQUENCES, verbalizers)
    for row, seq in enumerate(SEQUENCES):
        alone = next_token_logits(lm, [seq], verbalizers)
        torch.testing.assert_close(batch[row], alone[0], atol=1e-5, rtol=1e-5)


def test_full_vocabulary_forward_agrees():
    lm = load_lm("tiny-gpt2", device="cpu")
    with torch.no_grad():
        full = lm.model(torch.tensor([SEQUENCES[0]])).logits[0, -1]
    torch.testing.assert_close(next_token_logits(lm, [SEQUENCES[0]], [10, 20])[0], full[[10, 20]])


def test_plain_positions_would_be_wrong_for_gpt2():
    """Guards the reason for position ids: without them a padded GPT-2 row sees shifted positions."""
    lm = load_lm("tiny-gpt2", device="cpu")
    ids, mask, _ = left_pad(SEQUENCES, lm.tokenizer.pad_token_id)
    with torch.no_grad():
        naive = lm.model(input_ids=ids, attention_mask=mask).logits[1, -1, [10, 20, 30]]
    alone = next_token_logits(lm, [SEQUENCES[1]], [10, 20, 30])[0]
    assert not torch.allclose(naive, alone, atol=1e-4)


def test_batched_scoring_keeps_input_order():
    lm = load_lm("tiny-llama", device="cpu")
    many = SEQUENCES * 3
    got = batched_next_token_logits(lm, many, [10, 20], batch_size=2)
    for row, seq in enumerate(many):
        torch.testing.assert_close(got[row], next_token_logits(lm, [seq], [10, 20])[0], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="batch_size"):
        batched_next_token_logits(lm, many, [10], batch_size=0)

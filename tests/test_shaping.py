import torch

from rlprompt_interp.rewards.shaping import linear_map, zscore_by_key


def test_linear_map_by_hand():
    got = linear_map(torch.tensor([0.0, 50.0, 100.0]), (0, 100), (-10, 10))
    assert got.tolist() == [-10.0, 0.0, 10.0]


def test_zscore_per_input_by_hand():
    scores = torch.tensor([1.0, 3.0, 10.0, 10.0, 5.0])
    got = zscore_by_key(scores, ["a", "a", "b", "b", "c"], eps=0.0)
    # group a: mean 2, std 1 -> -1, 1; group b: std 0 -> 0/(0+0) would be nan, so use eps below
    assert got[:2].tolist() == [-1.0, 1.0]
    got = zscore_by_key(scores, ["a", "a", "b", "b", "c"], eps=1e-4)
    assert got[2:].tolist() == [0.0, 0.0, 0.0]

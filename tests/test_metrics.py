"""Metric values computed by hand: unembedding, the differentials, prompt F1, similarity, transfer."""

import math

import pytest
import torch

from rlprompt_interp.metrics import (PromptF1, distance_differential, frobenius_distance, matrix_correlation,
                                     norm_statistics, normalize_words, output_differential, pca_2d,
                                     performance_differential, prompt_f1, similarity_matrix, stochasticity,
                                     transfer_matrix, unembed)
from rlprompt_interp.metrics.errors import MetricInputError

# Five 2-D "token embeddings" and three prompt positions; the last position is exactly token 3.
VOCAB = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [1.0, 1.0], [10.0, 12.0]])
PROMPT = torch.tensor([[2.0, 0.0], [0.5, 3.0], [1.0, 1.0]])
NORM_P1 = math.sqrt(0.5 ** 2 + 3 ** 2)  # ||(0.5, 3)|| = sqrt(9.25)
NORM_E4 = math.sqrt(10 ** 2 + 12 ** 2)  # sqrt(244)


@pytest.mark.parametrize("chunk_size", [2, 3, 4096])
def test_unembed_euclidean_by_hand(chunk_size):
    # row 0: |(2,0)-(1,0)| = 1, |(2,0)-(1,1)| = sqrt 2; row 1: |(.5,3)-(0,2)| = sqrt 1.25, |(.5,3)-(1,1)| = sqrt 4.25;
    # row 2: itself at 0, then (1,0) at 1
    result = unembed(PROMPT, VOCAB, metric="euclidean", top_k=2, chunk_size=chunk_size)
    assert result.token_ids.tolist() == [[0, 3], [1, 3], [3, 0]]
    torch.testing.assert_close(result.scores, torch.tensor([[1.0, math.sqrt(2)], [math.sqrt(1.25), math.sqrt(4.25)],
                                                            [0.0, 1.0]]))
    assert result.scores[2, 0] == 0.0  # an exact token embedding reads back distance 0, not rounding noise
    assert result.top1 == [0, 1, 3]


@pytest.mark.parametrize("chunk_size", [2, 4096])
def test_unembed_cosine_by_hand(chunk_size):
    # row 1: cos with (0,2) = 6/(2*sqrt 9.25); with (10,12) = 41/(sqrt 9.25 * sqrt 244) beats
    # (1,1) at 3.5/(sqrt 9.25 * sqrt 2)
    result = unembed(PROMPT, VOCAB, metric="cosine", top_k=2, chunk_size=chunk_size)
    assert result.token_ids.tolist() == [[0, 3], [1, 4], [3, 4]]
    expected = torch.tensor([[1.0, 1 / math.sqrt(2)], [3 / NORM_P1, 41 / (NORM_P1 * NORM_E4)],
                             [1.0, 22 / (math.sqrt(2) * NORM_E4)]])
    torch.testing.assert_close(result.scores, expected)
    torch.testing.assert_close(result.distances(), 1 - expected)


def test_unembed_dot_by_hand():
    # the long vector (10,12) wins every dot product: 20, 41, 22; row 1's runner-up is (0,2) with 6
    result = unembed(PROMPT, VOCAB, metric="dot", top_k=2, chunk_size=2)
    assert result.token_ids[:, 0].tolist() == [4, 4, 4] and result.token_ids[1, 1] == 1
    torch.testing.assert_close(result.scores[:, 0], torch.tensor([20.0, 41.0, 22.0]))
    assert result.scores[1, 1] == 6.0
    with pytest.raises(MetricInputError, match="not a distance"):
        result.distances()


def test_unembed_rejects_bad_input():
    with pytest.raises(MetricInputError, match="unknown unembedding metric"):
        unembed(PROMPT, VOCAB, metric="manhattan")
    with pytest.raises(MetricInputError, match="same d"):
        unembed(torch.zeros(2, 3), VOCAB)
    with pytest.raises(MetricInputError, match="top_k"):
        unembed(PROMPT, VOCAB, top_k=6)


def test_distance_differential_by_hand():
    # squared nearest distances: 1, 1.25, 0 -> mean 0.75; cosine: (1 - 1)^2, (1 - 3/sqrt 9.25)^2, 0
    assert distance_differential(PROMPT, VOCAB, "euclidean") == pytest.approx(0.75)
    # float32 cosines: 1 - cos of 0.0136 carries a ~1e-5 relative rounding error
    assert distance_differential(PROMPT, VOCAB, "cosine") == pytest.approx((1 - 3 / NORM_P1) ** 2 / 3, rel=1e-4)


def test_output_differential_by_hand():
    soft = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]])
    text = torch.tensor([[1.0, 2.0, 5.0], [1.0, -1.0, 0.0]])
    # row 0: (0 + 0 + 4)/3; row 1: (1 + 4 + 0)/3; mean 1.5. Arg-max: 2 vs 2 agree, 1 vs 0 do not
    result = output_differential(soft, text)
    assert result["mean_squared_difference"] == pytest.approx(1.5)
    assert result["top1_agreement"] == 0.5
    # [N, T, V] with T = 2 output positions gives the same mean over (example, position)
    assert output_differential(soft[None], text[None])["mean_squared_difference"] == pytest.approx(1.5)
    with pytest.raises(MetricInputError, match="one shape"):
        output_differential(soft, text[:, :2])
    assert performance_differential(0.75, 0.5) == 0.25 and performance_differential(0.5, 0.75) == 0.25


FACTS = "Write down the conclusion you can reach by combining the given Fact 1 and Fact 2."
SHEEP = '"If they have other interests and aims in life it does not necessarily follow that they are passive sheep."'
CLAMP = "int clamp(int val, int min_val, int max_val) { return std::max(min_val, std::min(max_val, val)); }"


@pytest.mark.parametrize("projection, target, common, n_projection, n_target, paper", [
    # Table 3 of Prompt Waywardness. FACTS has 14 words (two "the" dropped); the first reconstruction loses "and"
    (FACTS, FACTS, 14, 14, 14, 100.0),
    (FACTS.replace("Fact 1 and", "Fact 1."), FACTS, 13, 13, 14, 96.3),
    (FACTS.replace("Fact 1 and", "Fact 1 Category"), FACTS, 13, 14, 14, 92.9),
    (FACTS.replace("down the", "Messi in"), FACTS, 13, 15, 14, 89.7),
    # SHEEP: 19 words; "passive" -> "terrible", then also "sheep." -> "GoPro ." (the lone "." is no word)
    (SHEEP.replace("passive", "terrible"), SHEEP, 18, 19, 19, 94.7),
    (SHEEP.replace("passive sheep.", "terrible GoPro ."), SHEEP, 17, 19, 19, 89.5),
    # CLAMP: punctuation is deleted, so "std::max(min_val," is the single word "stdmaxminval"; 11 words
    (CLAMP.replace("max_val, val", "max_val terrible val"), CLAMP, 11, 12, 11, 95.7),
    (CLAMP.replace("max_val, val)); }", "max_val terrible val)); This }"), CLAMP, 11, 13, 11, 91.7),
])
def test_prompt_f1_reproduces_waywardness_table3(projection, target, common, n_projection, n_target, paper):
    by_hand = 2 * common / (n_projection + n_target)  # F1 = 2PR/(P+R) = 2c/(|pred| + |ref|)
    assert len(normalize_words(projection)) == n_projection and len(normalize_words(target)) == n_target
    assert prompt_f1(projection, target) == pytest.approx(by_hand)
    assert round(100 * by_hand, 1) == paper


def test_prompt_f1_rules():
    assert normalize_words(CLAMP)[:4] == ["int", "clampint", "val", "int"]
    assert normalize_words("The cats were running, an apple!") == ["cat", "be", "run", "apple"]  # articles out, lemmas
    assert prompt_f1("Cats running", "the cat runs") == 1.0  # lemmatisation makes them equal
    assert prompt_f1("dog", "cat") == 0.0
    assert prompt_f1("", "") == 1.0 and prompt_f1("...", "the") == 1.0 and prompt_f1("a", "cat") == 0.0
    # multiset overlap: "good good film" vs "good film film": common {good, film} = 2 of 3 each -> 2/3
    assert prompt_f1("good good film", "good film film") == pytest.approx(2 / 3)


def test_prompt_f1_as_evaluate_metric():
    result = PromptF1().compute(predictions=[FACTS, "dog"], references=[FACTS.replace("Fact 1 and", "Fact 1."), "cat"])
    assert result["per_pair"] == [pytest.approx(26 / 27), 0.0]
    assert result["f1"] == pytest.approx(13 / 27)


def test_frobenius_similarity_and_norms_by_hand():
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    b = torch.tensor([[1.0, 0.0], [0.0, 4.0]])
    c = torch.zeros(2, 2)
    assert frobenius_distance(a, b) == pytest.approx(math.sqrt(13))  # diff [[0, 2], [3, 0]]
    matrix = similarity_matrix([a, b, c])
    expected = torch.tensor([[0, math.sqrt(13), math.sqrt(30)], [math.sqrt(13), 0, math.sqrt(17)],
                             [math.sqrt(30), math.sqrt(17), 0]], dtype=torch.float64)
    torch.testing.assert_close(matrix, expected)
    stats = norm_statistics([a, b])  # norms sqrt 30 and sqrt 17
    mean = (math.sqrt(30) + math.sqrt(17)) / 2
    assert stats["mean_norm"] == pytest.approx(mean)
    assert stats["variance"] == pytest.approx((math.sqrt(30) - mean) ** 2 + (math.sqrt(17) - mean) ** 2)  # n - 1 = 1
    groups = stochasticity([a, b, c], ["x", "x", "y"])
    assert groups["x"]["mean_pairwise_distance"] == pytest.approx(math.sqrt(13))
    assert groups["y"] == {"n": 1, "mean_norm": 0.0, "variance": 0.0, "norms": [0.0], "mean_pairwise_distance": 0.0}
    with pytest.raises(MetricInputError, match="same length"):
        frobenius_distance(a, torch.zeros(3, 2))


def test_pca_map_separates_two_clusters():
    base = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    prompts = [base, base + 0.01, base + 5, base + 5.01]
    coords = pca_2d(prompts)
    assert coords.shape == (4, 2)
    assert (coords[0] - coords[1]).norm() < 0.1 < 1 < (coords[0] - coords[2]).norm()
    # PCA keeps distances along the first component: the clusters are 5 * sqrt(12) apart in 12-D
    assert abs(float(coords[2, 0] - coords[0, 0])) == pytest.approx(5 * math.sqrt(12), rel=1e-3)


def test_transfer_and_correlation_by_hand():
    transfer = transfer_matrix(torch.tensor([[0.8, 0.6], [0.5, 0.9]]), torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(transfer, torch.tensor([[0.3, 0.1], [0.0, 0.4]], dtype=torch.float64))
    # off-diagonal entries x = 1..6 and y = 2,1,4,3,6,5: sum dx*dy = 14.5, |dx|^2 = |dy|^2 = 17.5 -> r = 29/35
    s = torch.tensor([[0.0, 1, 2], [3, 0, 4], [5, 6, 0]])
    t = torch.tensor([[9.0, 2, 1], [4, 9, 3], [6, 5, 9]])
    result = matrix_correlation(s, t)
    assert result["n"] == 6
    assert result["pearson"] == pytest.approx(29 / 35) and result["spearman"] == pytest.approx(29 / 35)
    assert matrix_correlation(s, -s)["pearson"] == pytest.approx(-1.0)
    with pytest.raises(MetricInputError, match="one shape"):
        matrix_correlation(s, t[:2])

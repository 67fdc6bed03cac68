"""The bootstrap of sweep_report against values worked by hand, and the error bars of the trade-off plot."""

import math

import numpy as np
import pytest

from rlprompt_interp.sweep_report import (arm_bootstrap, format_interval, paired_bootstrap, plot_tradeoff,
                                          seed_arrays)


def exact(value, estimate, low=None, high=None):
    """An interval that is ``{estimate, low, high}`` exactly (low and high default to the estimate)."""
    return value == {"estimate": estimate, "low": estimate if low is None else low,
                     "high": estimate if high is None else high}


def test_identical_arms_differ_by_nothing():
    correct = np.random.default_rng(1).integers(0, 2, size=(1, 50))
    result = paired_bootstrap(correct, [math.log(10)], correct, [math.log(10)])
    assert exact(result["accuracy_difference"], 0.0) and exact(result["perplexity_ratio"], 1.0)
    # seeds that agree on every sentence: resampling them changes nothing either
    same = np.repeat(correct, 3, axis=0)
    assert exact(paired_bootstrap(same, None, same[:2], None)["accuracy_difference"], 0.0)


def test_right_everywhere_against_nowhere_is_100_points_whatever_is_drawn():
    result = paired_bootstrap(np.ones((3, 20)), None, np.zeros((2, 20)), None)
    assert exact(result["accuracy_difference"], 100.0) and result["perplexity_ratio"] is None


def test_sentences_are_drawn_once_for_both_arms():
    # The arm is right on sentence 2 besides the base's 0 and 1: the difference is 25 points times how often
    # sentence 2 is drawn among 4, Binomial(4, 1/4): P(0) = 0.32 > 2.5%, P(4) = 0.004 < 2.5% < P(>= 3) = 0.051.
    result = paired_bootstrap([[1, 1, 1, 0]], None, [[1, 1, 0, 0]], None)
    assert exact(result["accuracy_difference"], 25.0, 0.0, 75.0)  # drawn apart, the low end would be below 0
    # right on two of four against none: 25 points per draw of sentence 0 or 1, Binomial(4, 1/2): P(0) = P(4) > 2.5%
    assert exact(paired_bootstrap([[1, 1, 0, 0]], None, [[0, 0, 0, 0]], None)["accuracy_difference"], 50.0, 0.0, 100.0)


def test_the_perplexity_ratio_moves_with_the_seeds_only():
    # one seed each: exact, however the sentences are drawn
    one = paired_bootstrap([[1, 0]], [math.log(2)], [[0, 1]], [math.log(8)])
    assert one["perplexity_ratio"] == pytest.approx({"estimate": 4.0, "low": 4.0, "high": 4.0})
    # the arm's seeds have perplexities 1 and 4 (geometric mean 2), the base's one 8: resampled arms have geometric
    # means 1, 2, 2 or 4 (chance 1/4, 1/2, 1/4), so the ratio is 8, 4 or 2 and the interval [2, 8]
    two = paired_bootstrap([[1, 0], [1, 0]], [0.0, math.log(4)], [[0, 1]], [math.log(8)])
    assert two["perplexity_ratio"] == pytest.approx({"estimate": 4.0, "low": 2.0, "high": 8.0})


def test_an_arms_mean_by_hand_and_against_the_binomial():
    assert exact(arm_bootstrap(np.ones((2, 10)))["accuracy"], 1.0)
    # right on 2 of 4: the drawn accuracy is Binomial(4, 1/2) / 4, with P(0) = P(1) = 1/16 > 2.5%
    assert exact(arm_bootstrap([[1, 1, 0, 0]])["accuracy"], 0.5, 0.0, 1.0)
    seeds = arm_bootstrap([[1, 0], [1, 0]], [math.log(1), math.log(4)])["perplexity"]
    assert seeds == pytest.approx({"estimate": 2.0, "low": 1.0, "high": 4.0})
    # one seed on 400 sentences, half right: about 0.5 ± 1.96 sqrt(0.25 / 400) = ± 0.049
    accuracy = arm_bootstrap([[1, 0] * 200])["accuracy"]
    assert (accuracy["high"] - accuracy["low"]) / 2 == pytest.approx(0.049, rel=0.1)


def test_the_bootstrap_is_seeded_and_refuses_different_test_sets():
    arm, base = np.random.default_rng(2).integers(0, 2, size=(2, 3, 30))
    assert paired_bootstrap(arm, [1, 2, 3], base, [2, 2, 2]) == paired_bootstrap(arm, [1, 2, 3], base, [2, 2, 2])
    assert paired_bootstrap(arm, None, base, None, seed=1) != paired_bootstrap(arm, None, base, None, seed=2)
    with pytest.raises(ValueError, match="different test sets"):
        paired_bootstrap(arm, None, base[:, :20], None)


def test_seed_arrays_read_the_records():
    records = [{"test_correct": "0110", "log_perplexity": 1.5}, {"test_correct": "1111", "log_perplexity": 2.0}]
    correct, log_ppl = seed_arrays(records)
    assert correct.tolist() == [[0, 1, 1, 0], [1, 1, 1, 1]] and log_ppl == [1.5, 2.0]
    assert seed_arrays(records + [{"log_perplexity": None}]) == (None, None)  # a cell from before test_correct


def test_format_interval():
    value = {"estimate": 3.25, "low": -1.0, "high": 7.5}
    assert format_interval(value, lambda v: f"{v:+.1f}") == "+3.2 [-1.0, +7.5]"
    assert format_interval(None) == "-"


def test_plot_tradeoff_draws_error_bars(tmp_path):
    path = plot_tradeoff([(10.0, 0.7), (100.0, 0.8), (50.0, 0.75)], ["a", "b", "c"], tmp_path / "plot.png",
                         xlabel="x", ylabel="y", groups=["g", "g", "h"], xerr=[(5.0, 20.0), None, (40.0, 60.0)],
                         yerr=[(0.65, 0.75), (0.78, 0.82), None])
    assert path.stat().st_size > 1000


def test_declared_columns_read_summary_rows():
    from rlprompt_interp.sweep_report import (SEEDS_COLUMN, column, first_seed, markdown_table, mean_std_column,
                                              summarize)

    records = [{"cell": {"arm": "a", "seed": s}, "acc": acc, "prompt": p}
               for s, acc, p in ((0, 0.5, "x|y"), (1, 0.7, "z"))]
    rows = summarize(records, by=["arm"], metrics=["acc"])
    table = markdown_table(rows, [column("arm", "arm name", str.upper), mean_std_column("accuracy", "acc", 2),
                                  SEEDS_COLUMN, first_seed("prompt", "prompt (first seed)")])
    assert table.splitlines() == ["| arm name | accuracy | seeds | prompt (first seed) |", "|---|---|---|---|",
                                  "| A | 0.60 ± 0.14 | 2 | x\\|y |"]  # std of 0.5, 0.7: 0.1414

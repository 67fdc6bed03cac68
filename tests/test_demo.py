"""`make demo` drives `train`'s config: its settings are the shipped demo-sst2 recipe, any train flag overrides them."""

from conftest import load_experiment
from rlprompt_interp.prompts import LearnedPrompt


def test_demo_trains_the_recipe_and_compares_with_no_prompt(sst_files, tmp_path, capsys, single_thread):
    demo = load_experiment("demo")
    out = tmp_path / "run"
    assert demo.main(["--data-dir", str(sst_files), "--model", "tiny-gpt2", "--steps", "2", "--mlp-width", "32",
                      "--test-limit", "0", "--output", str(out), "--quiet"]) == 0
    config = LearnedPrompt.load(out).provenance["config"]
    assert config["policy"]["fluent_top_k"] == 20 and config["policy"]["condition"].startswith("Classify")  # recipe
    assert config["sql"]["prompts_per_step"] == 8 and config["sql"]["lr"] == 1e-3 and config["reward"]["reward"] == "gap=1"
    assert config["sql"]["steps"] == 2 and config["policy"]["mlp_width"] == 32 and config["models"]["model"] == "tiny-gpt2"
    printed = capsys.readouterr().out
    assert "[before] no prompt: test accuracy" in printed and "-> learned prompt" in printed
    assert "training in float32 on cpu" in printed  # auto is fp32 in the tests; the test accuracy always is

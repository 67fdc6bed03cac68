"""``rlprompt-interp unembed``, ``compare`` and the interpretability part of ``eval``, on tiny models."""

import json
import math

import pytest
import torch

from rlprompt_interp.cli import main
from rlprompt_interp.evaluation import evaluate_prompt
from rlprompt_interp.metrics import frobenius_distance
from rlprompt_interp.models import load_lm
from rlprompt_interp.perplexity import perplexity
from rlprompt_interp.prompts import LearnedPrompt
from rlprompt_interp.tasks import get_task


def save_prompt(folder, embeddings=None, token_ids=None, task="sst-2", seed=0, method="soft-prompt"):
    provenance = {"method": method, "model": "tiny-gpt2", "task_model": "tiny-gpt2", "task": task, "seed": seed}
    return LearnedPrompt(text="x", token_ids=token_ids, embeddings=embeddings, provenance=provenance).save(folder)


def test_unembed_prints_the_nearest_tokens(tiny_gpt2, tmp_path, capsys):
    table = tiny_gpt2.model.get_input_embeddings().weight.detach()
    folder = save_prompt(tmp_path / "soft", embeddings=table[[50, 60]].clone())
    out = tmp_path / "readout.json"
    assert main(["unembed", "--learned", str(folder), "--metric", "cosine", "--top-k", "3", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "nearest tokens by cosine, top 3" in printed and "top-1 text" in printed
    rows = json.loads(out.read_text())["rows"]
    assert [row["token_ids"][0] for row in rows] == [50, 60]  # an exact embedding reads back its own token
    assert all(len(row["tokens"]) == 3 and row["scores"][0] == pytest.approx(1.0) for row in rows)
    assert rows[0]["tokens"][0] in printed or repr(rows[0]["tokens"][0]) in printed


def test_compare_prints_similarity_and_writes_plots(tiny_gpt2, tmp_path, capsys):
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randn(2, 32, generator=g) for _ in range(3)]
    folders = [save_prompt(tmp_path / f"p{i}", embeddings=p, seed=i, task="sst-2" if i < 2 else "subj")
               for i, p in enumerate(prompts)]
    ids_folder = save_prompt(tmp_path / "discrete", token_ids=[5, 6], method="rlprompt")
    out = tmp_path / "cmp"
    assert main(["compare", *map(str, folders), str(ids_folder), "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "similarity" in printed and "sst-2/soft-prompt" in printed
    payload = json.loads((out / "compare.json").read_text())
    assert payload["labels"][:3] == ["sst-2/soft-prompt/s0", "sst-2/soft-prompt/s1", "subj/soft-prompt/s2"]
    assert payload["similarity"][0][2] == pytest.approx(frobenius_distance(prompts[0], prompts[2]))
    table = tiny_gpt2.model.get_input_embeddings().weight.detach()
    assert payload["similarity"][0][3] == pytest.approx(frobenius_distance(prompts[0], table[[5, 6]]), rel=1e-6)
    norms = [float(p.double().norm()) for p in prompts[:2]]
    stats = payload["stochasticity"]["sst-2/soft-prompt"]
    assert stats["mean_norm"] == pytest.approx(sum(norms) / 2)
    assert stats["variance"] == pytest.approx((norms[0] - norms[1]) ** 2 / 2)
    for name in ("similarity.png", "prompt_map.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


def test_compare_transfer_matches_direct_evaluation(tiny_gpt2, sst_files, tmp_path, capsys):
    (sst_files / "subj" / "16-42").mkdir(parents=True)
    for path in ("subj/16-42/train.tsv", "subj/16-42/dev.tsv", "subj/test.tsv"):
        (sst_files / path).write_text("sentence\tlabel\nthe film is about a dog\t1\nI loved it so much\t0\n"
                                      "it was shot in Paris\t1\nwhat a bore\t0\n")
    g = torch.Generator().manual_seed(3)
    prompts = {"sst-2": 0.3 * torch.randn(2, 32, generator=g), "subj": 0.3 * torch.randn(2, 32, generator=g)}
    folders = [save_prompt(tmp_path / name, embeddings=p, task=name) for name, p in prompts.items()]
    out = tmp_path / "cmp"
    assert main(["compare", *map(str, folders), "--transfer", "--data-dir", str(sst_files), "--split", "dev",
                 "--output-dir", str(out)]) == 0
    transfer = json.loads((out / "compare.json").read_text())["transfer"]
    for i, source in enumerate(prompts):
        for j, target in enumerate(prompts):
            task = get_task(target, data_dir=str(sst_files))
            soft = evaluate_prompt(task, tiny_gpt2, LearnedPrompt(text="", embeddings=prompts[source]), split="dev",
                                   progress=False).accuracy
            empty = evaluate_prompt(task, tiny_gpt2, LearnedPrompt(text="", token_ids=[]), split="dev",
                                    progress=False).accuracy
            assert transfer["transfer"][i][j] == pytest.approx(soft - empty)
    assert transfer["correlation"]["n"] == 2
    assert (out / "transfer.png").is_file() and "accuracy change vs no prompt" in capsys.readouterr().out


def test_compare_rejects_prompts_of_different_lengths(tmp_path, capsys):
    a = save_prompt(tmp_path / "a", embeddings=torch.zeros(2, 32))
    b = save_prompt(tmp_path / "b", embeddings=torch.zeros(3, 32))
    assert main(["compare", str(a), str(b)]) == 2
    assert "different shapes" in capsys.readouterr().err


def test_eval_reports_faithfulness_perplexity_and_readout(sst_files, tmp_path, capsys):
    soft = 0.5 * torch.randn(3, 32, generator=torch.Generator().manual_seed(4))
    folder = save_prompt(tmp_path / "soft", embeddings=soft)
    out = tmp_path / "report.json"
    assert main(["eval", "--task", "sst-2", "--data-dir", str(sst_files), "--learned", str(folder), "--scorer",
                 "tiny-gpt2", "--output", str(out), "--quiet", "--batch-size", "4"]) == 0
    printed = capsys.readouterr().out
    for label in ("perplexity (tiny-gpt2)", "Δ_D euclidean", "Δ_Output", "Δ_L", "nearest tokens (cosine, top 3)"):
        assert label in printed
    report = json.loads(out.read_text())
    interp = report["interpretability"]
    faith = interp["faithfulness"]
    lm = load_lm("tiny-gpt2", device="cpu")
    assert interp["perplexity"] == pytest.approx(float(perplexity(lm, [faith["unembedded_text"]])[0]))
    assert faith["performance_differential"] == pytest.approx(
        abs(faith["soft"]["accuracy"] - faith["unembedded"]["accuracy"]))
    assert report["accuracy"] == faith["soft"]["accuracy"] and report["num_examples"] == 6
    assert len(interp["nearest_tokens"]) == 3 and all(len(r["tokens"]) == 3 for r in interp["nearest_tokens"])
    assert math.isfinite(faith["output_differential"])
    assert set(faith["distance_differential"]) == {"euclidean", "cosine"}


def test_eval_no_perplexity_flag(sst_files, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["eval", "--task", "sst-2", "--model", "tiny-gpt2", "--data-dir", str(sst_files), "--prompt", " so",
                 "--no-perplexity", "--output", str(out), "--quiet"]) == 0
    interp = json.loads(out.read_text())["interpretability"]
    assert interp["perplexity"] is None and interp["faithfulness"] is None
    assert "skipped" in capsys.readouterr().out

"""Masked task LMs (RoBERTa, BERT): the class read at the template's {mask}, checked against full forwards
of AutoModelForMaskedLM by hand; the template checks; a learning test; train and eval on the command line."""

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, DistilBertConfig, DistilBertForMaskedLM

from rlprompt_interp.algorithms import SQLConfig, SQLTrainer
from rlprompt_interp.cli import main
from rlprompt_interp.evaluation import evaluate_prompt
from rlprompt_interp.models import LoadedModel, load_lm, policy_for
from rlprompt_interp.prompts import LearnedPrompt
from rlprompt_interp.rewards import TaskGapReward
from rlprompt_interp.rewards.base import PromptBatch
from rlprompt_interp.scoring import mask_token_logits
from rlprompt_interp.tasks import TemplateError, get_task
from rlprompt_interp.tiny import build_test_tokenizer, tiny_random_model, with_mask_token
from test_policy import uniform_policy  # tests/ is on sys.path under pytest

pytestmark = pytest.mark.usefixtures("single_thread")

CLOZE = "{sentence} {prompt} {mask} ."
VERBALIZERS = [" terrible", " great"]


@pytest.fixture
def roberta():
    return load_lm("tiny-roberta", device="cpu", dtype="float32")


def full_forward_logits(lm, ids, token_ids):
    """The verbalizers' logits at the one mask of an unpadded sequence, from the whole model's own forward."""
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0]
    return logits[ids.index(lm.tokenizer.mask_token_id), token_ids]


def masked_lm(arch: str) -> LoadedModel:
    """RoBERTa (lm_head), BERT (cls) and DistilBERT (neither: read from the whole forward), tiny and random."""
    tokenizer = with_mask_token(build_test_tokenizer())
    if arch == "roberta":
        model, tokenizer = tiny_random_model("roberta", seed=3, tokenizer=tokenizer)
    else:
        torch.manual_seed(3)
        if arch == "bert":
            model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                               num_attention_heads=2, intermediate_size=64,
                                               pad_token_id=tokenizer.pad_token_id))
        else:
            model = DistilBertForMaskedLM(DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2,
                                                           hidden_dim=64, pad_token_id=tokenizer.pad_token_id))
    return LoadedModel(model=model.eval(), tokenizer=tokenizer, spec=f"tiny-{arch}")


@pytest.mark.parametrize("arch", ["roberta", "bert", "distilbert"])
def test_mask_logits_match_a_full_forward_of_each_sequence_alone(arch):
    lm = masked_lm(arch)
    texts = ["the movie was great <mask> .", "<mask> sports", "an awful boring film , really <mask> ."]
    sequences = lm.tokenizer(texts)["input_ids"]  # different lengths: the batch is padded
    ids = lm.tokenizer.convert_tokens_to_ids(["Ġgreat", "Ġterrible", "Ġgood"])
    batched = mask_token_logits(lm, sequences, ids)
    for row, seq in enumerate(sequences):
        torch.testing.assert_close(batched[row], full_forward_logits(lm, seq, ids), atol=1e-5, rtol=1e-5)


def test_the_reward_reads_the_mask_of_the_text_rlprompt_formats(sst_files, roberta):
    """The spliced prompt ids give the token ids of the whole formatted text, "<s> sentence prompt <mask> . </s>",
    and the reward's logits are the mask's in a full forward of it."""
    task = get_task("sst-2", data_dir=str(sst_files), template=CLOZE, verbalizers=VERBALIZERS)
    reward = TaskGapReward(task, roberta)
    examples = [{"sentence": "the movie was great fun"}, {"sentence": "the worst plot"}]
    prompts = [" really very", " sad"]
    prompt_ids = [roberta.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
    logits = reward.verbalizer_logits(prompt_ids, examples)  # [N, M, C]
    verbalizer_ids = task.verbalizer_ids(roberta.tokenizer)
    assert roberta.tokenizer.convert_ids_to_tokens(verbalizer_ids) == ["Ġterrible", "Ġgreat"]
    for n, prompt in enumerate(prompts):
        for m, example in enumerate(examples):
            text = f"{example['sentence']}{prompt} <mask> ."
            ids = roberta.tokenizer(text)["input_ids"]
            assert roberta.tokenizer.convert_ids_to_tokens([ids[0], ids[-1]]) == ["<s>", "</s>"]
            torch.testing.assert_close(logits[n, m], full_forward_logits(roberta, ids, verbalizer_ids),
                                       atol=1e-5, rtol=1e-5)


def test_a_template_must_suit_the_task_model(sst_files, roberta, tiny_gpt2):
    cloze = get_task("sst-2", data_dir=str(sst_files), template=CLOZE)
    with pytest.raises(TemplateError, match=r"not a masked LM.*drop \{mask\}"):
        TaskGapReward(cloze, tiny_gpt2)
    with pytest.raises(TemplateError, match=r"is a masked LM.*add one"):
        TaskGapReward(get_task("sst-2", data_dir=str(sst_files)), roberta)
    with pytest.raises(TemplateError, match="2 {mask} slots"):
        get_task("sst-2", template="{mask} {sentence} {prompt} {mask}")
    with pytest.raises(TemplateError, match="exactly one mask token"):  # a mask inside the example's own text
        mask_token_logits(roberta, [roberta.tokenizer("<mask> and <mask>")["input_ids"]], [5])
    assert policy_for(roberta) == "tiny-gpt2" and policy_for(tiny_gpt2) == "tiny-gpt2"


def test_the_gap_reward_on_a_masked_lm_rises_with_training(tmp_path, roberta):
    """SQL with the gap reward of tiny-roberta on a one-class task: the greedy prompt learns to push " great"."""
    folder = tmp_path / "sst-2" / "16-42"
    folder.mkdir(parents=True)
    rows = ["the movie was great fun", "really good acting", "beautiful and funny", "an awful boring film"]
    text = "sentence\tlabel\n" + "".join(f"{row}\t1\n" for row in rows)
    for path in (folder / "train.tsv", folder / "dev.tsv", tmp_path / "sst-2" / "test.tsv"):
        path.write_text(text)
    task = get_task("sst-2", data_dir=str(tmp_path), template=CLOZE, verbalizers=VERBALIZERS)
    reward = TaskGapReward(task, roberta, balance_classes=True)
    batch = {"sentence": rows, "label": [1] * len(rows)}
    policy = uniform_policy(load_lm("tiny-gpt2", device="cpu"))
    config = SQLConfig(prompt_length=3, steps=60, prompts_per_step=16, examples_per_step=4, lr=1e-2, eval_every=0,
                       seed=0)
    trainer = SQLTrainer(policy, reward, config, train_data=batch)

    def greedy_reward() -> float:
        text, ids = trainer.greedy_prompt()
        return float(reward(PromptBatch([text], [ids]), batch).scores[0])

    before = greedy_reward()
    trainer.train(progress=False)
    after = greedy_reward()
    assert before < 0 and after > before + 100, (before, after)  # measured: -79 -> 137 (accuracy 0.36 -> 1.0)
    assert trainer.curve[-1]["reward"] > trainer.curve[0]["reward"] + 100  # the sampled prompts moved too


def test_train_then_eval_a_masked_lm_prompt_on_the_command_line(sst_files, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "sst-2", "--data-dir", str(sst_files), "--model", "tiny-roberta", "--template", CLOZE,
                 "--verbalizers", *VERBALIZERS, "--steps", "3", "--output", str(out), "--quiet"]) == 0
    trained = capsys.readouterr().out
    learned = LearnedPrompt.load(out)
    assert learned.provenance["task_model"] == "tiny-roberta" and learned.provenance["policy_model"] == "tiny-gpt2"
    test_accuracy = learned.scores["test_accuracy"]
    assert f"accuracy      {test_accuracy:.4f}" in trained
    assert main(["eval", "--task", "sst-2", "--data-dir", str(sst_files), "--learned", str(out), "--no-perplexity",
                 "--quiet", "--output", str(tmp_path / "report.json")]) == 0
    assert f"accuracy      {test_accuracy:.4f}" in capsys.readouterr().out
    task = get_task("sst-2", data_dir=str(sst_files), template=CLOZE, verbalizers=VERBALIZERS)
    report = evaluate_prompt(task, load_lm("tiny-roberta", dtype="float32"), learned, progress=False)
    assert report.accuracy == test_accuracy
    # predict labels new texts as eval scored them (the recorded cloze template, read at the mask)
    assert learned.classify(list(task.load_split("test")["sentence"])).indices == report.predicted


def test_a_causal_model_with_a_mask_template_is_refused_in_one_line(sst_files, tmp_path, capsys):
    code = main(["train", "--task", "sst-2", "--data-dir", str(sst_files), "--model", "tiny-gpt2", "--template", CLOZE,
                 "--steps", "1", "--output", str(tmp_path / "run"), "--quiet"])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1
    assert error[0].startswith("rlprompt-interp: error: template") and "not a masked LM" in error[0]


def test_sweeps_and_experiments_read_a_task_in_rlprompts_cloze_for_a_masked_model(sst_files):
    from argparse import Namespace

    from rlprompt_interp.sweeps import task_and_models
    from rlprompt_interp.tasks.registry import rlprompt_cloze

    args = Namespace(data_dir=str(sst_files), seed_split="16-42", task_model="tiny-roberta", scorer="tiny-gpt2")
    task, models = task_and_models(args, "sst-2")
    assert models["task"].is_masked_lm and task.template.text == CLOZE and task.verbalizers == tuple(VERBALIZERS)
    assert rlprompt_cloze(get_task("agnews")).template.text == "{mask} {prompt} {sentence}"
    args.task_model = "tiny-gpt2"  # a causal task LM keeps the task's own template
    assert task_and_models(args, "sst-2")[0].template.text == "{sentence} {prompt}"


def test_an_example_longer_than_the_model_takes_is_cut_around_its_mask(roberta):
    """tiny-roberta's 258 positions from pad id 0 take 257 tokens; a 400-token review keeps its end, the mask
    and the 2 tokens after it, and scores as that cut sequence does alone."""
    from rlprompt_interp.scoring import fit_around_mask, max_sequence_length

    assert max_sequence_length(roberta) == 257
    long = roberta.tokenizer(" ".join(["great fun"] * 200) + " really <mask> .")["input_ids"]
    assert len(long) > 400
    cut, position = fit_around_mask(long, long.index(roberta.tokenizer.mask_token_id), 257)
    assert len(cut) == 257 and cut[:1] == long[:1] and cut[-3:] == long[-3:] and cut[position] == long[-3]
    ids = roberta.tokenizer.convert_tokens_to_ids(["Ġgreat", "Ġterrible"])
    torch.testing.assert_close(mask_token_logits(roberta, [long], ids)[0], full_forward_logits(roberta, cut, ids),
                               atol=1e-5, rtol=1e-5)
    cloze_first = [long[0], roberta.tokenizer.mask_token_id, *long[1:-4], long[-1]]  # "<mask> ... review"
    cut, position = fit_around_mask(cloze_first, 1, 257)
    assert position == 1 and cut[:2] == cloze_first[:2] and cut[-1] == cloze_first[-1] and len(cut) == 257


def test_the_masked_path_runs_in_bf16_where_the_dtype_policy_picks_it(bf16_cpu, sst_files, roberta):
    """`auto` on a CPU with bf16 instructions (taken for one here): the task model loads in bf16 and the reward's
    logits stay within bf16's rounding of the fp32 ones."""
    fast = load_lm("tiny-roberta", device="cpu", dtype="auto")
    assert fast.dtype == torch.bfloat16
    task = get_task("sst-2", data_dir=str(sst_files), template=CLOZE, verbalizers=VERBALIZERS)
    examples = [{"sentence": "the movie was great fun"}, {"sentence": "an awful boring film"}]
    prompt_ids = [roberta.tokenizer.encode(" really very", add_special_tokens=False)]
    exact = TaskGapReward(task, roberta).verbalizer_logits(prompt_ids, examples)
    rounded = TaskGapReward(task, fast).verbalizer_logits(prompt_ids, examples)
    assert rounded.dtype == torch.float32 and torch.allclose(rounded, exact, atol=0.05)


def test_a_soft_prompt_of_token_embeddings_reads_the_mask_as_the_tokens_do(sst_files, roberta):
    """The soft-prompt path of a masked LM (right padding, the mask found around the prompt): the embeddings of
    a prompt's tokens give the logits of the tokens themselves, with the mask after the prompt and before it."""
    from rlprompt_interp.scoring import segment_example, soft_prompt_logits

    ids = roberta.tokenizer.encode("really very", add_special_tokens=False)  # no leading space: the slot keeps its own
    embeddings = roberta.model.get_input_embeddings().weight[ids]
    vocab = list(range(len(roberta.tokenizer)))
    for template in (CLOZE, "{mask} {prompt} {sentence}"):
        task = get_task("sst-2", data_dir=str(sst_files), template=template)
        splits = [task.template.split({"sentence": s}, "<mask>") for s in ("the movie was great fun", "sad")]
        segments = [segment_example(roberta, *split) for split in splits]
        soft = soft_prompt_logits(roberta, segments, embeddings, vocab)
        hard = mask_token_logits(roberta, [b + ids + a for b, a in segments], vocab)
        torch.testing.assert_close(soft, hard, atol=1e-5, rtol=1e-5)


def test_a_soft_prompt_learns_on_a_masked_lm(sst_files, tmp_path):
    from rlprompt_interp.agents import get_agent

    task = get_task("sst-2", data_dir=str(sst_files), template=CLOZE, verbalizers=VERBALIZERS)
    agent = get_agent("soft-prompt", model="tiny-roberta", lr=0.1, batch_size=6, eval_every=5, quiet=True)
    learned = agent.fit(task, prompt_length=3, steps=10, seed=0)
    losses = [record["task_loss"] for record in learned.curve if "task_loss" in record]
    assert losses[-1] < losses[0] - 0.1, losses
    assert learned.provenance["task_model"] == "tiny-roberta" and learned.embeddings.shape == (3, 32)


def test_the_roberta_recipe_is_the_paper_recipe_with_rlprompts_masked_task_model():
    from rlprompt_interp.config import read_config_file, recipe_path

    paper, roberta = (read_config_file(recipe_path(name)) for name in ("rlprompt-paper", "rlprompt-roberta"))
    assert {key for key in paper.keys() | roberta.keys() if paper.get(key) != roberta.get(key)} == {
        "model", "policy_model", "template"}
    assert (roberta["model"], roberta["policy_model"], roberta["template"]) == ("roberta-large", "distilgpt2", CLOZE)

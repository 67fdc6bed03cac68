"""The interpretability report behind ``rlprompt-interp eval``: accuracy, scrutability, faithfulness, readout.

For any prompt: task accuracy and the perplexity of its text under a scorer LM. For a soft
prompt (a learned prompt with embeddings) also the three faithfulness differentials against its
unembedded text, and the nearest vocabulary tokens of each position. The accuracy of a soft
prompt is the one of its embeddings; its perplexity is the one of its unembedded text. A
discrete learned prompt (RLPrompt, PEZ) gets the same differentials on its tokens' embeddings,
where they are zero by construction, so tables of every agent have the same columns.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from ..evaluation import ClassificationReport, evaluate_prompt
from ..models import EVAL_DTYPE, LoadedModel, load_lm
from ..prompts import LearnedPrompt
from ..tasks import ClassificationTask
from .faithfulness import FaithfulnessReport, faithfulness
from .scrutability import scrutability
from .unembed import METRICS, unembed, vocabulary_matrix


PROMPT_SCORER = "prompt"  # eval's default --scorer: see scorer_for


def scorer_for(prompt: str | LearnedPrompt, lm: LoadedModel, scorer: str | LoadedModel | None):
    """The perplexity scorer to load for ``scorer`` and why, in words for the report. ``PROMPT_SCORER`` is the
    cheap default: the scorer a learned prompt was trained against (its provenance's ``scorer_model``), else the
    task LM itself, which is loaded already; GPT2-XL, the papers' scorer, is ``--scorer gpt2-xl``."""
    if scorer != PROMPT_SCORER:
        return scorer, "given"
    trained_with = prompt.provenance.get("scorer_model") if isinstance(prompt, LearnedPrompt) else None
    if trained_with:
        return trained_with, "its reward's scorer"
    return lm, "the task LM"


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``eval`` flags of the interpretability part of the report."""
    group = parser.add_argument_group("interpretability")
    group.add_argument("--scorer", default=PROMPT_SCORER,
                       help=f"perplexity scorer LM: {PROMPT_SCORER} = the one a learned prompt's perplexity reward "
                            "used, else the task LM (already loaded: nothing to download); gpt2-xl = the papers' "
                            "scorer (several GB); or any model (auto = gpt2-xl online, smollm2-135m offline)")
    group.add_argument("--no-perplexity", action="store_true", help="skip the perplexity (scrutability) of the prompt")
    group.add_argument("--unembed-metric", default="euclidean", choices=METRICS,
                       help="distance of the unembedding f_U behind Δ_Output and Δ_L (soft prompts)")
    group.add_argument("--readout-metric", default="cosine", choices=METRICS,
                       help="similarity of the nearest-token readout (soft prompts)")
    group.add_argument("--top-k", type=int, default=3, help="nearest tokens shown per position (soft prompts)")
    group.add_argument("--no-faithfulness", action="store_true",
                       help="skip the faithfulness differentials of discrete learned prompts (zero by construction; "
                            "soft prompts always get them)")


def nearest_tokens(embeddings, lm: LoadedModel, metric: str = "cosine", top_k: int = 3) -> list[dict]:
    """Per position: the ``top_k`` nearest vocabulary tokens (strings and ids) and their scores."""
    result = unembed(embeddings, vocabulary_matrix(lm.model, lm.tokenizer), metric=metric, top_k=top_k)
    return [{"position": i, "tokens": tokens, "token_ids": ids, "scores": scores}
            for i, (tokens, ids, scores) in enumerate(zip(result.tokens(lm.tokenizer), result.token_ids.tolist(),
                                                          result.scores.tolist()))]


def _is_soft(prompt) -> bool:
    return isinstance(prompt, LearnedPrompt) and prompt.is_soft


def soft_form(prompt: str | LearnedPrompt, lm: LoadedModel) -> LearnedPrompt | None:
    """The prompt as embeddings ``[L, d]``: its own for a soft prompt, ``E[token_ids]`` for a discrete
    learned prompt, ``None`` for text prompts and empty prompts."""
    if not isinstance(prompt, LearnedPrompt):
        return None
    if prompt.is_soft:
        return prompt
    if not prompt.token_ids:
        return None
    table = lm.model.get_input_embeddings().weight.detach()
    return LearnedPrompt(text=prompt.text, token_ids=list(prompt.token_ids),
                         embeddings=table[list(prompt.token_ids)].float().cpu(), provenance=dict(prompt.provenance))


@dataclass
class EvalReport:
    classification: ClassificationReport
    scored_text: str
    scorer: str | None = None
    scorer_from: str | None = None  # why this scorer (scorer_for)
    perplexity: float | None = None
    perplexity_note: str | None = None
    faithfulness: FaithfulnessReport | None = None
    readout_metric: str | None = None
    nearest_tokens: list[dict] | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The classification report's fields, plus an ``interpretability`` section."""
        payload = self.classification.to_dict()
        payload["interpretability"] = {
            "scored_text": self.scored_text, "scorer": self.scorer, "scorer_from": self.scorer_from,
            "perplexity": self.perplexity,
            "perplexity_note": self.perplexity_note,
            "faithfulness": self.faithfulness.to_dict() if self.faithfulness else None,
            "readout_metric": self.readout_metric, "nearest_tokens": self.nearest_tokens}
        return payload

    def format(self) -> str:
        scorer = ", ".join(part for part in (self.scorer, self.scorer_from) if part and part != "given")
        rows = [("perplexity" + (f" ({scorer})" if scorer else ""),
                 f"{self.perplexity:.2f}" if self.perplexity is not None else f"n/a ({self.perplexity_note})")]
        f = self.faithfulness
        if f is not None:
            rows += [("unembedded text f_U (" + f.unembed_metric + ")", repr(f.unembedded_text)),
                     ("Δ_D euclidean (mean sq. distance)", f"{f.distance_differential['euclidean']:.4f}"),
                     ("Δ_D cosine (mean sq. 1-cos)", f"{f.distance_differential['cosine']:.4f}"),
                     ("Δ_Output (mean sq. logit diff.)", f"{f.output_differential:.4f}"),
                     ("top-1 token agreement", f"{f.top1_agreement:.4f}"),
                     ("predicted-class agreement", f"{f.class_agreement:.4f}"),
                     ("accuracy soft / unembedded (same slot)", f"{f.soft.accuracy:.4f} / {f.unembedded.accuracy:.4f}"),
                     ("Δ_L |acc soft - acc unembedded|", f"{f.performance_differential:.4f}")]
        width = max(len(name) for name in ("interpretability", *(name for name, _ in rows))) + 2
        lines = [self.classification.format(), "", f"{'interpretability':<{width}}value"]
        lines += [f"{name:<{width}}{value}" for name, value in rows]
        if self.nearest_tokens:
            lines.append(f"nearest tokens ({self.readout_metric}, top {len(self.nearest_tokens[0]['tokens'])})")
            lines += [format_readout_row(row) for row in self.nearest_tokens]
        return "\n".join(lines)


def format_readout_row(row: dict) -> str:
    cells = " | ".join(f"{token!r} {score:.3f}" for token, score in zip(row["tokens"], row["scores"]))
    return f"  {row['position']:>3}  {cells}"


def build_report(task: ClassificationTask, lm: LoadedModel, prompt: str | LearnedPrompt, *, split: str = "test",
                 limit: int | None = None, batch_size: int = 32, scorer: str | LoadedModel | None = PROMPT_SCORER,
                 unembed_metric: str = "euclidean", readout_metric: str = "cosine", top_k: int = 3,
                 faithfulness_for_discrete: bool = True, dtype: str = EVAL_DTYPE, progress: bool = True) -> EvalReport:
    """Evaluate ``prompt`` on ``task`` and measure its interpretability (``scorer=None``: no perplexity).

    Soft prompts get the faithfulness differentials of their embeddings. Discrete learned prompts
    (RLPrompt, PEZ) get them too, measured on their tokens' own embeddings ``E[ids]``: by
    construction ``f_U(E[ids]) = ids`` and all three differentials come out zero, which the
    report shows rather than assumes (the unembedding is computed; when its embeddings equal the
    prompt's, the split is scored once). Plain text prompts get accuracy and perplexity only.
    """
    as_soft = soft_form(prompt, lm) if faithfulness_for_discrete or _is_soft(prompt) else None
    if as_soft is not None:
        faith = faithfulness(task, lm, as_soft, metric=unembed_metric, split=split, limit=limit, batch_size=batch_size,
                             progress=progress)
        if _is_soft(prompt):
            classification = faith.soft
        else:  # a discrete prompt's accuracy is that of its token ids, as evaluate_prompt scores them
            classification = evaluate_prompt(task, lm, prompt, split=split, limit=limit, batch_size=batch_size,
                                             progress=progress)
        report = EvalReport(classification=classification, scored_text=faith.unembedded_text, faithfulness=faith,
                            readout_metric=readout_metric,
                            nearest_tokens=nearest_tokens(as_soft.embeddings, lm, readout_metric, top_k))
    else:
        classification = evaluate_prompt(task, lm, prompt, split=split, limit=limit, batch_size=batch_size,
                                         progress=progress)
        if isinstance(prompt, LearnedPrompt):
            text = lm.tokenizer.decode(prompt.token_ids) if prompt.token_ids else prompt.text
        else:
            text = prompt
        report = EvalReport(classification=classification, scored_text=text)
    if scorer is None:
        report.perplexity_note = "skipped (--no-perplexity)"
    elif not report.scored_text.strip():
        report.perplexity_note = "empty prompt"
    else:
        scorer, report.scorer_from = scorer_for(prompt, lm, scorer)
        scorer_lm = scorer if isinstance(scorer, LoadedModel) else load_lm(scorer, role="scorer", dtype=dtype)
        report.scorer = scorer_lm.spec
        report.perplexity = scrutability(scorer_lm, [report.scored_text])[0]
    return report

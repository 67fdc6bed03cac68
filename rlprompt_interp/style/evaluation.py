"""Evaluate a prompt on a style-transfer task the way RLPrompt reports it.

For each test input the task LM rewrites it with the prompt (greedy with one sample; with several,
top-k samples of which the one with the best content + style is kept, RLPrompt's output
selection). The report holds:

* content: mean cosine similarity of MiniLM embeddings of input and output (BERTScore's role);
* style accuracy: fraction of outputs the style classifier puts in the target style;
* fluency: the outputs' perplexity under the scorer LM (``rlprompt_interp.perplexity``), and the
  fraction of outputs at most ``fluency_threshold`` (default: the 95th percentile of the inputs'
  own perplexities, i.e. "as likely as human-written text"), which stands in for RLPrompt's
  fluency classifier;
* joint score: mean over sentences of content x style x fluent (RLPrompt's J), and the geometric
  mean of (content, style accuracy, fluency);
* BLEU of the outputs against the human references and against the inputs (sacrebleu corpus BLEU).

The outputs are written to a TSV file when asked.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sacrebleu
import torch
from tqdm.auto import tqdm

from ..atomic import write_atomic, write_json_atomic
from ..models import EVAL_DTYPE, LoadedModel, compute_record, load_lm
from ..perplexity import log_perplexity
from ..prompts import LearnedPrompt, task_model
from ..rewards.content import ContentPreservation
from ..rewards.style import StyleClassifier
from ..rewards.style_transfer import combine_samples
from ..tasks.style_transfer import DIRECTIONS, StyleTransferTask, get_style_task
from .classifier import resolve_classifier
from .generation import GenerationSettings, generate_rewrites


@dataclass
class StyleTransferReport:
    task: str
    split: str
    prompt: str
    model: str
    scorer: str
    examples: int
    content: float
    style_accuracy: float
    style_probability: float
    fluency: float
    perplexity_median: float
    perplexity_mean: float
    fluency_threshold: float
    joint: float
    geometric_mean: float
    bleu_references: float | None
    bleu_inputs: float
    empty_outputs: int
    samples_per_input: int
    subset: str | None = None  # how a --limit subset was drawn; None: the whole split
    outputs_file: str | None = None
    examples_shown: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        ref = "n/a" if self.bleu_references is None else f"{self.bleu_references:.2f}"
        lines = [
            f"{self.task} ({self.split}, {self.examples} inputs, {self.samples_per_input} sample(s) each) "
            f"prompt {self.prompt!r} on {self.model}" + (f"\n  inputs: {self.subset}" if self.subset else ""),
            f"  content {self.content:.4f}  style accuracy {self.style_accuracy:.4f} "
            f"(mean p {self.style_probability:.4f})  fluency {self.fluency:.4f} "
            f"(ppl <= {self.fluency_threshold:.1f} under {self.scorer}; median ppl {self.perplexity_median:.1f})",
            f"  joint {self.joint:.4f}  geometric mean {self.geometric_mean:.4f}  "
            f"BLEU vs references {ref}  vs inputs {self.bleu_inputs:.2f}  empty outputs {self.empty_outputs}",
        ]
        lines += [f"    {src!r} -> {out!r}" for src, out in self.examples_shown]
        if self.outputs_file:
            lines.append(f"  outputs: {self.outputs_file}")
        return "\n".join(lines)


def output_log_perplexities(scorer: LoadedModel, texts: list[str], batch_size: int = 32) -> torch.Tensor:
    """Log-perplexity of each text ``[N]``; ``inf`` for empty texts (they cannot be scored)."""
    result = torch.full((len(texts),), float("inf"))
    keep = [i for i, t in enumerate(texts) if t.strip()]
    if keep:
        result[keep] = log_perplexity(scorer, [texts[i] for i in keep], batch_size=batch_size).float().cpu()
    return result


def evaluate_style_transfer(task: StyleTransferTask, lm: LoadedModel, prompt: str, *, classifier,
                            scorer: LoadedModel, content: ContentPreservation | None = None, split: str = "test",
                            limit: int | None = None, num_samples: int = 1, top_k: int = 10,
                            length_ratio: float = 1.5, batch_size: int = 32, seed: int = 0,
                            fluency_threshold: float | None = None, outputs_file: str | Path | None = None,
                            progress: bool = True, show: int = 3) -> StyleTransferReport:
    """Rewrite ``task``'s ``split`` inputs with ``prompt`` and score them (see the module docstring)."""
    data = task.load_split(split, limit=limit)
    inputs, references = list(data["input"]), list(data["references"])
    style = classifier if isinstance(classifier, StyleClassifier) else StyleClassifier(classifier)
    content = content or ContentPreservation()
    settings = GenerationSettings(num_samples=num_samples, top_k=top_k, length_ratio=length_ratio,
                                  lowercase=task.lowercase, greedy=num_samples == 1, batch_size=batch_size, seed=seed)
    bar = tqdm(total=len(inputs), desc=f"rewriting {task.full_name}", unit="input", disable=not progress)
    rewrites = generate_rewrites(lm, prompt, inputs, settings=settings, template=task.template, progress=bar.update)
    bar.close()
    target = task.target_style
    flat = [text for samples in rewrites for text in samples]
    sources = [x for x in inputs for _ in range(num_samples)]
    content_all = content.scores(sources, flat).reshape(len(inputs), num_samples)
    style_all = style.probabilities(flat, target).reshape(len(inputs), num_samples)
    best = combine_samples(content_all[..., None], style_all[..., None]).argmax(-1)  # [M]: RLPrompt's selection
    rows = torch.arange(len(inputs))
    outputs = [rewrites[i][int(best[i])] for i in range(len(inputs))]
    content_scores, style_probs = content_all[rows, best].clamp(min=0.0), style_all[rows, best]
    in_style = (style_probs > 0.5).float()
    log_ppl = output_log_perplexities(scorer, outputs, batch_size)
    if fluency_threshold is None:
        fluency_threshold = float(torch.quantile(output_log_perplexities(scorer, inputs, batch_size).exp(), 0.95))
    fluent = (log_ppl.exp() <= fluency_threshold).float()
    finite = log_ppl[torch.isfinite(log_ppl)].exp()
    mean_content, accuracy, fluency = float(content_scores.mean()), float(in_style.mean()), float(fluent.mean())
    has_refs = all(references)
    report = StyleTransferReport(
        task=task.full_name, split=split, prompt=prompt, model=lm.spec, scorer=scorer.spec, examples=len(inputs),
        content=mean_content, style_accuracy=accuracy, style_probability=float(style_probs.mean()), fluency=fluency,
        perplexity_median=float(finite.median()) if len(finite) else math.inf,
        perplexity_mean=float(finite.mean()) if len(finite) else math.inf, fluency_threshold=fluency_threshold,
        joint=float((content_scores * in_style * fluent).mean()),
        geometric_mean=(max(mean_content, 0.0) * accuracy * fluency) ** (1 / 3),
        bleu_references=sacrebleu.corpus_bleu(outputs, [[r[0] for r in references]]).score if has_refs else None,
        bleu_inputs=sacrebleu.corpus_bleu(outputs, [inputs]).score,
        empty_outputs=sum(not o.strip() for o in outputs), samples_per_input=num_samples,
        subset=task.subset_note(split, limit),
        examples_shown=list(zip(inputs[:show], outputs[:show])))
    if outputs_file is not None:
        report.outputs_file = str(write_outputs(outputs_file, inputs, outputs, references, content_scores, style_probs,
                                                log_ppl.exp()))
    return report


def evaluate_style_prompt(task: str, prompt: str | LearnedPrompt = "", *, data_dir: str | Path | None = None,
                          direction: str | None = None, model: str = "auto", scorer: str = "auto",
                          classifier: str | None = None, split: str = "test", limit: int | None = None,
                          num_samples: int = 1, top_k: int = 10, length_ratio: float = 1.5, batch_size: int = 32,
                          seed: int = 0, fluency_threshold: float | None = None, dtype: str = EVAL_DTYPE,
                          output: str | Path | None = None, progress: bool = True, log=print) -> dict:
    """``style-eval`` and ``eval --task yelp-style``: a prompt on one or both directions of a style task.

    The direction is ``direction``, the one ``task`` names (``yelp-style:1_to_0``), a learned prompt's
    own, or else both; the task LM is ``model`` or the one the prompt was learned with. With ``output``
    the reports go there as JSON and each direction's outputs beside it as TSV. Returns the reports.
    """
    learned = prompt if isinstance(prompt, LearnedPrompt) else None
    text = learned.text if learned is not None else (prompt or "")
    provenance = learned.provenance if learned is not None else {}
    task_name, _, named = task.partition(":")
    direction = direction or named or provenance.get("direction") or (provenance.get("config") or {}).get(
        "direction") or "both"
    directions = list(DIRECTIONS) if direction == "both" else [direction]
    lm = load_lm(task_model(learned, model), role="task", dtype=dtype)
    scorer_lm = load_lm(scorer, role="scorer", dtype=dtype)
    classifier = resolve_classifier(classifier)
    output = Path(output) if output else None
    reports = {}
    for name in directions:
        outputs_file = output.with_name(f"{output.stem}.{name}.outputs.tsv") if output is not None else None
        report = evaluate_style_transfer(
            get_style_task(task_name, data_dir=data_dir, direction=name), lm, text, classifier=classifier,
            scorer=scorer_lm, split=split, limit=limit, num_samples=num_samples, top_k=top_k,
            length_ratio=length_ratio, batch_size=batch_size, seed=seed, fluency_threshold=fluency_threshold,
            outputs_file=outputs_file, progress=progress)
        log(report.format())
        reports[name] = report.to_dict()
    payload = {"prompt": text, "task_model": lm.spec, "scorer": scorer_lm.spec, "style_classifier": classifier,
               "computed_with": compute_record(lm.dtype, lm.device), "directions": reports}
    if output is not None:
        write_json_atomic(output, payload)
        log(f"report written to {output} (outputs beside it)")
    return payload


def write_outputs(path: str | Path, inputs, outputs, references, content, style, perplexity) -> Path:
    """One TSV row per input: input, output, reference, content, target-style probability, perplexity."""
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_MINIMAL)
            writer.writerow(["input", "output", "reference", "content", "target_style_probability", "perplexity"])
            for i, (src, out) in enumerate(zip(inputs, outputs)):
                writer.writerow([src, out, references[i][0] if references[i] else "", f"{float(content[i]):.4f}",
                                 f"{float(style[i]):.4f}", f"{float(perplexity[i]):.2f}"])

    return write_atomic(path, write)

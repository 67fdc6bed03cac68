"""Style classifiers: a small head trained locally over MiniLM sentence embeddings, or any Hugging Face
sequence-classification model; both answer ``predict_proba(texts) -> [N, num_styles]``.

RLPrompt scores style with a BERT classifier fine-tuned on Yelp, which needs the hub. Offline, the
toolkit trains its own: embed the sentences of each style once with the embedded MiniLM encoder
(mean pooling, see ``sentence_embeddings.py``), then fit a logistic-regression or one-hidden-layer
MLP head with class-balanced cross-entropy. The folder it writes holds ``style_classifier.json``
(configuration, style names, metrics) and ``head.safetensors``; ``load_style_classifier(path)``
reads it, or a Hugging Face model folder / hub id.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from safetensors.torch import load_file, save_file

from ..atomic import write_atomic, write_folder_atomic
from ..models import LoadedModel, ModelLoadError, cache_dir, default_device, load_lm
from .sentence_embeddings import DEFAULT_ENCODER, embed_sentences

CONFIG_NAME = "style_classifier.json"
WEIGHTS_NAME = "head.safetensors"
HEADS = ("logreg", "mlp")


class StyleClassifierError(ValueError):
    """A style classifier folder that cannot be read, or training data that cannot be used."""


DEFAULT_CLASSIFIER_ENV = "RLPROMPT_INTERP_STYLE_CLASSIFIER"


def default_classifier_path() -> Path:
    """Where ``train-style-classifier`` writes by default and ``style-eval`` looks by default."""
    return Path(os.environ.get(DEFAULT_CLASSIFIER_ENV) or cache_dir() / "style-classifier-yelp")


def resolve_classifier(spec: str | None) -> str:
    """``spec`` itself, or the default classifier folder when it exists (else an error naming the fix)."""
    if spec:
        return spec
    path = default_classifier_path()
    if not path.is_dir():
        raise StyleClassifierError(
            f"no style classifier given and none at the default {path}; train one with "
            "`rlprompt-interp train-style-classifier --data-dir ../shared/data/yelp-style` (10 to 20 minutes on one CPU "
            "core), or pass --style-classifier with a folder or a Hugging Face classifier"
        )
    return str(path)


def build_head(kind: str, dim: int, num_classes: int, hidden: int = 256, dropout: float = 0.1) -> torch.nn.Module:
    if kind == "logreg":
        return torch.nn.Linear(dim, num_classes)
    if kind == "mlp":
        return torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.GELU(), torch.nn.Dropout(dropout),
                                   torch.nn.Linear(hidden, num_classes))
    raise StyleClassifierError(f"unknown classifier head {kind!r}; choose one of {list(HEADS)}")


# --------------------------------------------------------------------------- the local classifier


@dataclass
class EmbeddingStyleClassifier:
    """A trained head over sentence embeddings of ``encoder``; ``styles[i]`` names class ``i``."""

    head: torch.nn.Module
    config: dict
    encoder_lm: LoadedModel | None = field(default=None, repr=False)

    @property
    def styles(self) -> list[str]:
        return list(self.config["styles"])

    @property
    def encoder(self) -> LoadedModel:
        if self.encoder_lm is None:
            self.encoder_lm = load_lm(self.config["encoder"], role="task", dtype="float32")
        return self.encoder_lm

    @torch.inference_mode()
    def proba_from_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``[N, C]`` from embeddings ``[N, D]``."""
        self.head.eval()
        return torch.softmax(self.head(embeddings.float()), dim=-1)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        embeddings = embed_sentences(self.encoder, texts, batch_size=batch_size)
        return self.proba_from_embeddings(embeddings)

    def save(self, folder: str | Path) -> Path:
        """Write the folder atomically (a temporary sibling renamed into place)."""
        state = {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}

        def write(tmp: Path) -> None:
            save_file(state, str(tmp / WEIGHTS_NAME))
            (tmp / CONFIG_NAME).write_text(json.dumps(self.config, indent=2, default=float))

        return write_folder_atomic(folder, write)

    @classmethod
    def load(cls, folder: str | Path) -> "EmbeddingStyleClassifier":
        folder = Path(folder).expanduser()
        config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
        if not config_path.is_file() or not weights_path.is_file():
            raise StyleClassifierError(f"{folder} is not a style classifier folder (needs {CONFIG_NAME} and {WEIGHTS_NAME}); "
                                       "train one with `rlprompt-interp train-style-classifier --output DIR`")
        config = json.loads(config_path.read_text())
        head = build_head(config["head"], config["dim"], len(config["styles"]), config.get("hidden", 256))
        head.load_state_dict(load_file(str(weights_path)))
        return cls(head=head.eval(), config=config)


# --------------------------------------------------------------------------- any HF classifier


@dataclass
class HubStyleClassifier:
    """A Hugging Face ``AutoModelForSequenceClassification`` (a folder or hub id), e.g. RLPrompt's Yelp BERT."""

    model: torch.nn.Module
    tokenizer: object
    spec: str
    max_length: int = 128

    @property
    def styles(self) -> list[str]:
        labels = self.model.config.id2label
        return [labels[i] for i in range(len(labels))]

    @torch.inference_mode()
    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor:
        texts = list(texts)
        result = torch.empty((len(texts), self.model.config.num_labels), dtype=torch.float32)
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer(texts[start:start + batch_size], padding=True, padding_side="right", truncation=True,
                                 max_length=self.max_length, return_tensors="pt").to(self.model.device)
            result[start:start + batch_size] = torch.softmax(self.model(**enc).logits.float(), dim=-1).cpu()
        return result

    @classmethod
    def load(cls, spec: str, device: str | torch.device | None = None) -> "HubStyleClassifier":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            model = AutoModelForSequenceClassification.from_pretrained(spec, trust_remote_code=False)
            tokenizer = AutoTokenizer.from_pretrained(spec, trust_remote_code=False)
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                f"could not load the style classifier {spec!r} as a sequence-classification model "
                f"({error.__class__.__name__}); pass a folder written by `rlprompt-interp train-style-classifier`, "
                "a local Hugging Face classifier folder, or a hub id when online"
            ) from error
        if device is not None:
            model.to(device)
        return cls(model=model.eval().requires_grad_(False), tokenizer=tokenizer, spec=spec)


_LOADED: dict[str, object] = {}


def load_style_classifier(spec: str | Path):
    """A local classifier folder (``style_classifier.json``), an HF classifier folder, or a hub id; cached."""
    key = str(Path(spec).expanduser().resolve()) if Path(spec).expanduser().exists() else str(spec)
    if key not in _LOADED:
        folder = Path(spec).expanduser()
        if (folder / CONFIG_NAME).is_file():
            _LOADED[key] = EmbeddingStyleClassifier.load(folder)
        elif folder.exists() and not (folder / "config.json").is_file():
            raise StyleClassifierError(f"{folder} holds neither {CONFIG_NAME} (a toolkit classifier) nor config.json "
                                       "(a Hugging Face classifier)")
        else:
            # on the process's device, as the LMs are (a GPU when there is one)
            _LOADED[key] = HubStyleClassifier.load(str(spec), device=default_device())
    return _LOADED[key]


# --------------------------------------------------------------------------- training


def cached_embeddings(encoder: LoadedModel, texts: Sequence[str], *, batch_size: int = 64, progress=None,
                      cache: bool = True) -> torch.Tensor:
    """``embed_sentences`` with an on-disk cache keyed by encoder and text content (embedding is the slow part)."""
    digest = hashlib.sha1("\n".join([encoder.spec, *texts]).encode()).hexdigest()[:16]
    path = cache_dir() / "embeddings" / f"{digest}.safetensors"
    if cache and path.is_file():
        return load_file(str(path))["embeddings"]
    embeddings = embed_sentences(encoder, texts, batch_size=batch_size, progress=progress)
    if cache:
        write_atomic(path, lambda tmp: save_file({"embeddings": embeddings.contiguous()}, tmp))
    return embeddings


def fit_head(features: torch.Tensor, labels: torch.Tensor, *, head: str = "logreg", hidden: int = 256,
             epochs: int = 300, lr: float = 1e-2, weight_decay: float = 1e-4, batch_size: int = 4096,
             seed: int = 0) -> torch.nn.Module:
    """Fit a head on ``features [N, D]`` / ``labels [N]`` with class-balanced cross-entropy (AdamW, minibatches)."""
    if len(features) != len(labels) or len(features) == 0:
        raise StyleClassifierError(f"{len(features)} feature rows but {len(labels)} labels")
    num_classes = int(labels.max()) + 1
    counts = torch.bincount(labels, minlength=num_classes).float()
    if (counts == 0).any():
        raise StyleClassifierError(f"every style needs training sentences; counts per style: {counts.tolist()}")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_head(head, features.shape[1], num_classes, hidden)
    weights = counts.sum() / (num_classes * counts)  # balanced: each class weighs the same in total
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(features), generator=generator)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            loss = loss_fn(model(features[idx]), labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    return model.eval()


def accuracy(classifier: EmbeddingStyleClassifier, features: torch.Tensor, labels: torch.Tensor) -> float:
    return float((classifier.proba_from_embeddings(features).argmax(-1) == labels).float().mean())


def train_style_classifier(train_texts: Sequence[Sequence[str]], *, test_texts: Sequence[Sequence[str]] | None = None,
                           styles: Sequence[str] | None = None, encoder: str = DEFAULT_ENCODER, head: str = "logreg",
                           hidden: int = 256, epochs: int = 300, lr: float = 1e-2, weight_decay: float = 1e-4,
                           limit_per_style: int | None = None, heldout_fraction: float = 0.05, seed: int = 0,
                           batch_size: int = 64, cache: bool = True, log=print) -> EmbeddingStyleClassifier:
    """Train a head over ``encoder`` sentence embeddings; ``train_texts[s]`` are the sentences of style ``s``.

    A ``heldout_fraction`` of each style's sentences is kept out of training to report a held-out
    accuracy; ``test_texts`` (same layout) adds the test accuracy. Metrics go into the config.
    """
    import time

    if len(train_texts) < 2:
        raise StyleClassifierError(f"a style classifier needs sentences of at least two styles, got {len(train_texts)}")
    styles = list(styles) if styles is not None else [str(i) for i in range(len(train_texts))]
    if len(styles) != len(train_texts):
        raise StyleClassifierError(f"{len(styles)} style names for {len(train_texts)} styles of sentences")
    generator = torch.Generator().manual_seed(seed)
    fit_texts, fit_labels, held_texts, held_labels = [], [], [], []
    for style, texts in enumerate(train_texts):
        texts = [t for t in texts if t.strip()]
        if not texts:
            raise StyleClassifierError(f"style {styles[style]!r} has no training sentences")
        order = torch.randperm(len(texts), generator=generator).tolist()
        if limit_per_style is not None:
            order = order[:limit_per_style]
        n_held = int(len(order) * heldout_fraction)
        held_texts += [texts[i] for i in order[:n_held]]
        fit_texts += [texts[i] for i in order[n_held:]]
        held_labels += [style] * n_held
        fit_labels += [style] * (len(order) - n_held)
    lm = load_lm(encoder, role="task", dtype="float32")
    started = time.perf_counter()
    fit_x = cached_embeddings(lm, fit_texts, batch_size=batch_size, cache=cache)
    held_x = cached_embeddings(lm, held_texts, batch_size=batch_size, cache=cache) if held_texts else None
    embed_seconds = time.perf_counter() - started
    log(f"embedded {len(fit_texts) + len(held_texts)} sentences in {embed_seconds:.0f} s")
    fit_y = torch.as_tensor(fit_labels)
    started = time.perf_counter()
    model = fit_head(fit_x, fit_y, head=head, hidden=hidden, epochs=epochs, lr=lr, weight_decay=weight_decay, seed=seed)
    config = {"kind": "embedding-head", "encoder": encoder, "head": head, "hidden": hidden, "dim": fit_x.shape[1],
              "styles": styles, "train": {"sentences": len(fit_texts), "epochs": epochs, "lr": lr,
                                          "weight_decay": weight_decay, "seed": seed,
                                          "limit_per_style": limit_per_style, "embed_seconds": embed_seconds,
                                          "fit_seconds": time.perf_counter() - started},
              "metrics": {}}
    classifier = EmbeddingStyleClassifier(head=model, config=config, encoder_lm=lm)
    config["metrics"]["train_accuracy"] = accuracy(classifier, fit_x, fit_y)
    if held_x is not None:
        config["metrics"]["heldout_accuracy"] = accuracy(classifier, held_x, torch.as_tensor(held_labels))
    if test_texts is not None:
        texts = [t for group in test_texts for t in group]
        labels = torch.as_tensor([s for s, group in enumerate(test_texts) for _ in group])
        config["metrics"]["test_accuracy"] = accuracy(classifier, cached_embeddings(lm, texts, cache=cache), labels)
        config["metrics"]["test_sentences"] = len(texts)
    log("metrics: " + json.dumps(config["metrics"]))
    return classifier

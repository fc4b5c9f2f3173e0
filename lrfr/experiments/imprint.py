"""Imprinted heads: a short fine-tuning's new classification heads started from its faces' class means.

A fine-tuning on a new identity set (Cheng et al. 2018: CelebA -> TinyFace; CSRI's synthetic branch)
starts with a head that knows none of its classes. With a long schedule the head is learnt first and
the backbone follows; with the few dozen steps of a CPU quick mode it is not: the cross-entropy stays
at chance and the backbone's gradient is noise. *Imprinting* (Qi, Brown & Lowe, CVPR 2018, "Low-shot
learning with imprinted weights", Sec. 3.2) starts each class's weight at the normalised mean embedding
of its training faces, as the starting model embeds them. Here, for a softmax head on raw embeddings
(``logit_j = w_j . x + b_j``: softmax, CentreFace), ``w_j = s * m_j / (|m_j| r)`` with ``r`` the mean
embedding norm, so that ``logit_j ~ s cos(x, m_j)``; ``b = 0``; CentreFace's centres start at ``m_j``.
This is our choice for quick mode, not the paper's (which fine-tunes for many epochs from a fresh head).

:func:`imprinted_config` returns the config that starts from such a state, its ``pretrained`` pointing
to ``<results>/<name>-start-<hash>.safetensors`` (the config's pre-trained modules and the imprinted
heads), which :func:`ensure_start` writes once before training.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from lrfr.io import save_tensors_atomic
from lrfr.training.config import ExperimentConfig
from lrfr.training.experiment import build_datasets, classes_per_stream
from lrfr.training.objective import ClassificationTerm, Objective, build_objective
from lrfr.training.rng import seed_everything

SCALE = 16.0  # s: the imprinted logits' scale (cosine-softmax temperature 1/16)


def class_means(objective: Objective, dataset: Dataset, field: str, num_classes: int, *, super_resolve: bool = False,
                batch_size: int = 256) -> tuple[Tensor, float]:
    """(C, D) mean raw embedding of each class of ``dataset`` (its items' ``field`` images, SR'd first
    when ``super_resolve``) and the mean embedding norm; a class without faces is an error."""
    sums, counts, norms = None, torch.zeros(num_classes), 0.0
    with torch.no_grad():
        for batch in tqdm(DataLoader(dataset, batch_size=batch_size), desc="imprint", leave=False):
            images = objective.super_resolve(batch[field]) if super_resolve else batch[field]
            embeddings = objective.backbone(images).float()
            labels = batch["label"].long()
            sums = torch.zeros(num_classes, embeddings.shape[1]) if sums is None else sums
            sums.index_add_(0, labels, embeddings)
            counts += torch.bincount(labels, minlength=num_classes).float()
            norms += embeddings.norm(dim=1).sum().item()
    if sums is None or bool((counts == 0).any()):
        raise ValueError(f"imprinting needs faces of every one of the {num_classes} classes; "
                         f"{int((counts == 0).sum())} have none")
    return sums / counts[:, None], norms / counts.sum().item()


def imprint(head: nn.Module, means: Tensor, mean_norm: float, scale: float = SCALE) -> None:
    """Set a softmax head's classifier to ``scale * m_j / (|m_j| mean_norm)`` (bias 0) and, where it has
    them (CentreFace), its centres to the means."""
    classifier = getattr(head, "classifier", None)
    if not isinstance(classifier, nn.Linear) or classifier.weight.shape != means.shape:
        raise ValueError(f"imprinting needs a softmax head with a classifier of shape {tuple(means.shape)}; "
                         f"got {type(head).__name__}")
    with torch.no_grad():
        classifier.weight.copy_(scale * nn.functional.normalize(means, dim=1) / mean_norm)
        if classifier.bias is not None:
            classifier.bias.zero_()
        if isinstance(getattr(head, "centers", None), Tensor):
            head.centers.copy_(means)


def _head_term(objective: Objective, head: str) -> ClassificationTerm:
    terms = [t for t in objective.terms if isinstance(t, ClassificationTerm) and t.head_name == head]
    if not terms:
        raise ValueError(f"no classification term trains head {head!r}; cannot imprint it")
    return terms[0]


def write_start(config: ExperimentConfig, heads: tuple[str, ...], path: Path) -> None:
    """Build ``config``'s model as training would (pre-trained weights loaded), imprint ``heads`` from
    their streams' faces and write the loaded modules and the heads to ``path``."""
    seed_everything(config.train.seed)
    datasets = build_datasets(config)
    objective = build_objective(config.model, classes_per_stream(datasets)).eval()
    for head in heads:
        term = _head_term(objective, head)
        stream, field = term.input_key.split(".", 1)
        means, norm = class_means(objective, datasets[stream], field, objective.heads[head].num_classes,
                                  super_resolve=term.super_resolve)
        imprint(objective.heads[head], means, norm)
    modules = _started_modules(config, heads)
    save_tensors_atomic(path, {k: v for k, v in objective.state_dict().items() if any(k.startswith(m + ".") for m in modules)})


def _started_modules(config: ExperimentConfig, heads: tuple[str, ...]) -> list[str]:
    model = config.model
    loaded = [*model.pretrained_modules] if model.pretrained else []
    return sorted({*loaded, *(["sr"] if model.pretrained_sr else []), *(f"heads.{h}" for h in heads)})


def start_path(config: ExperimentConfig, results_root: str | Path) -> Path:
    """Where the start of ``config`` (before imprinting) is written: named by its hash."""
    from lrfr.experiments.workflow import config_hash

    return Path(results_root) / f"{config.name}-start-{config_hash(config)}.safetensors"


def imprinted_config(config: ExperimentConfig, results_root: str | Path, heads: tuple[str, ...]) -> ExperimentConfig:
    """``config`` started from its pre-trained weights with ``heads`` imprinted (see the module docstring):
    its ``pretrained`` is :func:`start_path`, which :func:`ensure_start` writes before training."""
    model = replace(config.model, pretrained=str(start_path(config, results_root)),
                    pretrained_modules=_started_modules(config, heads), pretrained_sr=None)
    return replace(config, model=model)


def ensure_start(config: ExperimentConfig, results_root: str | Path, heads: tuple[str, ...]) -> Path:
    """The start file of ``config`` with ``heads`` imprinted, written on first use (:func:`write_start`)."""
    path = start_path(config, results_root)
    if not path.is_file():
        write_start(config, heads, path)
    return path

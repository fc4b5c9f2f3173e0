"""The composed training objective: one backbone, optional SR network, heads, and weighted loss terms.

Every paper's loss is written as a sum of named, weighted terms over one forward pass:

* CSRI (Cheng et al. 2018, Eq. 4): ``L_fr^syn + L_fr^nat + lambda_sr * L_sr`` -- two classification
  terms on super-resolved inputs of two data streams and a ``pixel`` term on the SR output;
* Ling et al. 2023 (Eq. 7): ``lambda * L_dist + 1/2 L_cls(f_HR) + 1/2 L_cls(f_LR)`` -- paired HR/LR views
  through the shared backbone, a ``feature_distance`` term between them;
* Chai et al. 2023 (Eq. 10): ``L_cls + alpha L_L1 + beta L_ID + gamma L_MSE`` -- a ``classification``
  term and a ``recognizability`` term owning auxiliary modules that read the backbone's last feature map.

A term is an ``nn.Module`` (so auxiliary modules it owns are trained and checkpointed with the model)
whose ``forward(ctx)`` returns one scalar or a dict of named scalars. :class:`StepContext` runs the
backbone (and SR network) at most once per input key and step, whatever the number of terms using it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from lrfr.losses import build_head, pixel_loss
from lrfr.losses.feature_distances import FEATURE_DISTANCES
from lrfr.models import BackboneOutput, build_backbone
from lrfr.models.sr import SR_NETWORKS, SRThenFR
from lrfr.registry import Registry, import_object
from lrfr.training.config import ModelSpec

TERMS: Registry["LossTerm"] = Registry("loss term")


class StepContext:
    """The inputs of one step plus a per-step cache of backbone (and SR) outputs."""

    def __init__(self, objective: "Objective", batch: Mapping[str, Any]) -> None:
        self.objective = objective
        self.batch = batch
        self._embedded: dict[tuple[str, bool], BackboneOutput] = {}
        self._super_resolved: dict[str, Tensor] = {}

    def input(self, key: str) -> Any:
        """The batch entry ``key`` (``"<stream>.<field>"``), with a clear error if it is absent."""
        if key not in self.batch:
            raise KeyError(f"batch has no entry {key!r}; it has {sorted(self.batch)}")
        return self.batch[key]

    def super_resolve(self, key: str) -> Tensor:
        """The SR network's output for the images at ``key`` (computed once per step)."""
        if self.objective.sr is None:
            raise ValueError(f"a term asks for super-resolved {key!r}, but the model has no SR network")
        if key not in self._super_resolved:
            self._super_resolved[key] = self.objective.super_resolve(self.input(key))
        return self._super_resolved[key]

    def embed(self, key: str, super_resolve: bool = False) -> BackboneOutput:
        """Backbone embedding and last feature map of the images at ``key`` (optionally SR'd first)."""
        cache_key = (key, super_resolve)
        if self.objective.backbone is None:
            raise ValueError(f"a term asks for embeddings of {key!r}, but the model has no backbone")
        if cache_key not in self._embedded:
            images = self.super_resolve(key) if super_resolve else self.input(key)
            self._embedded[cache_key] = self.objective.backbone(images, return_feature_map=True)
        return self._embedded[cache_key]


class LossTerm(nn.Module):
    """Base of every loss term: a name (used in logs) and a weight in the composed sum."""

    def __init__(self, name: str, weight: float = 1.0) -> None:
        super().__init__()
        self.name = name
        self.weight = float(weight)

    def setup(self, backbone: nn.Module) -> None:
        """Build what depends on the backbone (feature-map shape, embedding size); nothing by default.

        :func:`build_objective` calls it before assembling the :class:`Objective`, so that the optimizer
        and checkpoints see what it builds.
        """

    def forward(self, ctx: StepContext) -> Tensor | dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


@TERMS.register("classification")
class ClassificationTerm(LossTerm):
    """Margin-head loss of the embeddings of one input (all the head's own terms, e.g. MagFace's g)."""

    def __init__(
        self,
        name: str,
        weight: float = 1.0,
        *,
        head: str = "main",
        input: str = "main.image",
        labels: str = "main.label",
        super_resolve: bool = False,
    ) -> None:
        super().__init__(name, weight)
        self.head_name, self.input_key, self.label_key = head, input, labels
        self.super_resolve = super_resolve

    def forward(self, ctx: StepContext) -> dict[str, Tensor]:
        embedding = ctx.embed(self.input_key, self.super_resolve).embedding
        return dict(ctx.objective.heads[self.head_name](embedding, ctx.input(self.label_key)).terms)


@TERMS.register("feature_distance")
class FeatureDistanceTerm(LossTerm):
    """Distance between the embeddings of two views of the same faces (e.g. HR and LR, Ling Eq. 7).

    ``distance`` names a loss of :data:`lrfr.losses.FEATURE_DISTANCES` (``"mse"``, ``"l1"``, ``"l2"``,
    Ling et al.'s ``"lp"`` and ``"logexp"``, the public code's ``"logexp_batch"``, ``"smooth_l1"``) or
    is a ``"module:function"`` taking two (B, D) tensors; ``distance_kwargs`` go to it (e.g.
    ``{"p": 2}``). ``normalize`` L2-normalises both embeddings first (Ling Eq. 7). ``detach_target``
    stops the gradient through view ``b`` (a fixed teacher signal).
    """

    def __init__(
        self,
        name: str,
        weight: float = 1.0,
        *,
        a: str = "main.hr",
        b: str = "main.lr",
        distance: str = "mse",
        distance_kwargs: dict[str, Any] | None = None,
        normalize: bool = False,
        detach_target: bool = False,
    ) -> None:
        super().__init__(name, weight)
        self.a, self.b, self.normalize, self.detach_target = a, b, normalize, detach_target
        self.distance = _resolve_distance(distance)
        self.distance_kwargs = dict(distance_kwargs or {})

    def forward(self, ctx: StepContext) -> Tensor:
        first, second = ctx.embed(self.a).embedding, ctx.embed(self.b).embedding
        if self.normalize:
            first, second = F.normalize(first, dim=1), F.normalize(second, dim=1)
        return self.distance(first, second.detach() if self.detach_target else second, **self.distance_kwargs)


def _resolve_distance(distance: str) -> Callable[..., Tensor]:
    if distance in FEATURE_DISTANCES:
        return FEATURE_DISTANCES[distance]
    if ":" in distance:
        return import_object(distance, "feature distance")
    raise ValueError(
        f"unknown feature distance {distance!r}; expected one of {sorted(FEATURE_DISTANCES)} "
        "or an allowed 'module:function' (see lrfr.registry)"
    )


@TERMS.register("pixel")
class PixelTerm(LossTerm):
    """SR pixel loss of ``SR(I_lr)`` against ``I_hr`` (see :func:`lrfr.losses.pixel_loss`).

    ``loss="mse"`` with ``reduction="sum"`` is CSRI's ``||I^asr - I^ahr||_2^2`` (Eq. 1) per image;
    ``reduction="mean"`` the per-element mean of SRCNN/VDSR training; ``loss="l1"`` EDSR's.
    """

    def __init__(
        self,
        name: str,
        weight: float = 1.0,
        *,
        lr: str = "main.lr",
        hr: str = "main.hr",
        loss: str = "mse",
        reduction: str = "mean",
    ) -> None:
        super().__init__(name, weight)
        if loss not in ("mse", "l1") or reduction not in ("mean", "sum"):
            raise ValueError(f"pixel loss must be 'mse' or 'l1' with reduction 'mean' or 'sum', got {loss!r}, {reduction!r}")
        self.lr, self.hr, self.loss, self.reduction = lr, hr, loss, reduction

    def forward(self, ctx: StepContext) -> Tensor:
        restored, target = ctx.super_resolve(self.lr), ctx.input(self.hr)
        if restored.shape != target.shape:
            raise ValueError(
                f"SR output for {self.lr!r} has shape {tuple(restored.shape)} but the target {self.hr!r} "
                f"has {tuple(target.shape)}"
            )
        return pixel_loss(restored, target, self.loss, self.reduction)  # type: ignore[arg-type]


class Objective(nn.Module):
    """Backbone + optional SR network + named heads + weighted loss terms (all trained together).

    The backbone may be None for a model that only super-resolves (trained with a ``pixel`` term).
    ``forward(batch)`` returns the *weighted* value of every term, keyed ``"<term>"`` or
    ``"<term>/<part>"`` for terms that return several parts (e.g. ``"cls/ce"``, ``"cls/magface_g"``);
    the training loss is their sum. Modules named in ``frozen`` stay in eval mode and get no gradient.
    """

    def __init__(
        self,
        backbone: nn.Module | None,
        heads: Mapping[str, nn.Module],
        terms: list[LossTerm],
        sr: nn.Module | None = None,
        frozen: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        names = [term.name for term in terms]
        if not terms or len(set(names)) != len(names):
            raise ValueError(f"loss terms must be a non-empty list with unique names, got {names}")
        if backbone is None and (sr is None or heads):
            raise ValueError("a model without a backbone must have an SR network and no heads")
        self.backbone, self.sr = backbone, sr
        self.heads = nn.ModuleDict(dict(heads))
        self.terms = nn.ModuleList(terms)
        self.frozen = tuple(frozen)
        self._freeze()

    def _freeze(self) -> None:
        modules = dict(self.named_modules())
        for prefix in self.frozen:
            if prefix not in modules:
                raise ValueError(f"cannot freeze {prefix!r}: no such module (have {sorted(self._children_names())})")
            for parameter in modules[prefix].parameters():
                parameter.requires_grad_(False)

    def _children_names(self) -> list[str]:
        return [name for name, _ in self.named_children()]

    def train(self, mode: bool = True) -> "Objective":
        super().train(mode)
        modules = dict(self.named_modules())
        for prefix in self.frozen:
            modules[prefix].eval()
        return self

    def recognizer(self) -> nn.Module:
        """What recognises a face: the backbone, or with an SR network ``backbone(sr(images))`` (the
        deployed branch of SR-then-FR and of CSRI, Cheng et al. Sec. 3 "Model Training and Deployment")."""
        if self.backbone is None:
            raise ValueError("this model has no backbone: it super-resolves but does not recognise")
        return self.backbone if self.sr is None else SRThenFR(self.sr, self.backbone)

    def super_resolve(self, images: Tensor) -> Tensor:
        """The SR network's output: at the backbone's input size when there is a backbone (see
        :class:`~lrfr.models.sr.SRThenFR`), else at the network's own output size."""
        if self.sr is None:
            raise ValueError("this model has no SR network")
        return self.sr(images) if self.backbone is None else SRThenFR(self.sr, self.backbone).super_resolve(images)

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        ctx = StepContext(self, batch)
        weighted: dict[str, Tensor] = {}
        for term in self.terms:
            value = term(ctx)
            parts = value.items() if isinstance(value, dict) else [(None, value)]
            for part, tensor in parts:
                key = term.name if part is None else f"{term.name}/{part}"
                weighted[key] = term.weight * tensor
        return weighted


def build_objective(spec: ModelSpec, num_classes: Mapping[str, int] | None = None) -> Objective:
    """Build the objective described by ``spec``; ``num_classes`` resolves heads sized by a stream."""
    backbone = build_backbone(spec.backbone, **spec.backbone_kwargs) if spec.backbone is not None else None
    if backbone is None and spec.heads:
        raise ValueError(f"model spec has heads {sorted(spec.heads)} but no backbone to feed them")
    heads = {
        name: build_head(
            head.kind,
            embedding_size=backbone.embedding_size,
            num_classes=_resolve_classes(name, head.num_classes, num_classes or {}),
            **head.kwargs,
        )
        for name, head in spec.heads.items()
    }
    terms = [TERMS.build(t.kind, name=t.name, weight=t.weight, **t.kwargs) for t in spec.terms]
    for term in terms:
        term.setup(backbone)
    sr = SR_NETWORKS.build(spec.sr, **spec.sr_kwargs) if spec.sr else None
    objective = Objective(backbone, heads, terms, sr=sr, frozen=tuple(spec.freeze))
    if spec.pretrained:
        load_pretrained(objective, spec.pretrained, modules=tuple(spec.pretrained_modules))
    if spec.pretrained_sr:
        if sr is None:
            raise ValueError(f"pretrained_sr={spec.pretrained_sr!r} is set but the model has no SR network (sr)")
        load_pretrained(objective, spec.pretrained_sr, modules=("sr",))
    return objective


def _resolve_classes(head: str, value: int | str, by_stream: Mapping[str, int]) -> int:
    if isinstance(value, int):
        return value
    if value not in by_stream:
        raise ValueError(
            f"head {head!r} takes its number of classes from stream {value!r}, "
            f"but the streams with a num_classes are {sorted(by_stream)}"
        )
    return by_stream[value]


def load_pretrained(objective: nn.Module, source: str | Path, modules: tuple[str, ...] = ("backbone",)) -> list[str]:
    """Load the weights of ``modules`` from a ``.safetensors`` file, a run folder's latest checkpoint, or
    a publisher's backbone file (insightface ``.pth``, AdaFace ``.ckpt``, dlib ``.dat``: converted by
    :func:`lrfr.models.pretrained.zoo.backbone_weights` for the objective's backbone).

    Every source key under those modules must exist in the objective with the same shape (a mismatch
    is an error naming the key); everything else (new heads, auxiliary modules) keeps its
    initialisation. Returns the loaded keys.
    """
    from lrfr.io import load_tensors
    from lrfr.models.pretrained.checkpoint import is_safetensors
    from lrfr.models.pretrained.zoo import backbone_weights
    from lrfr.runs import RunFolder

    source = Path(source)
    if source.is_dir():
        weights, _ = RunFolder.open(source).load_checkpoint()
    elif source.is_file() and not is_safetensors(source):
        weights = {f"backbone.{key}": value for key, value in backbone_weights(source, objective.backbone).items()}
    else:
        weights = load_tensors(source)
    weights = {k: v for k, v in weights.items() if any(k.startswith(m + ".") for m in modules)}
    if not weights:
        raise ValueError(f"pretrained weights {source} hold nothing under the modules {list(modules)}")
    own = objective.state_dict()
    problems = [
        f"{key}: {tuple(value.shape)} vs {tuple(own[key].shape) if key in own else 'missing'}"
        for key, value in weights.items()
        if key not in own or own[key].shape != value.shape
    ]
    if problems:
        raise ValueError(f"pretrained weights {source} do not fit the model: " + "; ".join(problems[:10]))
    objective.load_state_dict(weights, strict=False)
    return sorted(weights)

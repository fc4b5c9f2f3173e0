"""A backbone cut in two: a frozen prefix (its first body stages) and the trainable tail after it.

Fine-tuning only the end of a pre-trained backbone leaves the prefix's output a fixed function of the
image, so a study that trains many models from one backbone (Ling et al. 2023's ablations in the book's
quick mode) computes each face's prefix feature map once and trains every model's tail on those maps:
the same forward pass a frozen prefix would make at every step (batch norm in eval mode).

``start`` names where the tail begins: ``"head"`` (the embedding layer only) or a child of the body
(e.g. ``"stage3"``: that stage, the stages after it and the head). The tail keeps the backbone's module
names (``body.<stage>...``, ``head...``), so a tail's weights load into the whole backbone and back.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

from torch import Tensor, nn

from lrfr.models.base import BACKBONES, Backbone, BackboneOutput, Size


class BackboneTail(nn.Module):
    """The body stages from ``start`` on and the head of a backbone; input: the prefix's feature map."""

    def __init__(self, body: nn.Sequential, head: nn.Module, *, input_size: Size, embedding_size: int) -> None:
        super().__init__()
        self.body, self.head = body, head
        self.input_size, self.embedding_size = input_size, embedding_size

    def forward(self, features: Tensor, return_feature_map: bool = False) -> Tensor | BackboneOutput:
        feature_map = self.body(features)
        embedding = self.head(feature_map)
        return BackboneOutput(embedding, feature_map) if return_feature_map else embedding


def split_backbone(backbone: Backbone, start: str = "head") -> tuple[nn.Sequential, BackboneTail]:
    """``(prefix, tail)`` of ``backbone`` (its own modules, not copies): ``tail(prefix(x)) == backbone(x)``."""
    if not isinstance(backbone.body, nn.Sequential):
        raise ValueError(f"{type(backbone).__name__} has a body of type {type(backbone.body).__name__}; "
                         "splitting needs an nn.Sequential of named stages")
    names = [name for name, _ in backbone.body.named_children()]
    if start != "head" and start not in names:
        raise ValueError(f"start {start!r} is not 'head' or a stage of the body; expected one of {['head', *names]}")
    cut = len(names) if start == "head" else names.index(start)
    children = list(backbone.body.named_children())
    prefix = nn.Sequential(OrderedDict(children[:cut]))
    tail = BackboneTail(nn.Sequential(OrderedDict(children[cut:])), backbone.head,
                        input_size=backbone.input_size, embedding_size=backbone.embedding_size)
    return prefix, tail


def tail_modules(tail: BackboneTail) -> list[str]:
    """The tail's module names as the whole backbone's (``body.<stage>`` ..., ``head``)."""
    return [f"body.{name}" for name, _ in tail.body.named_children()] + ["head"]


def with_tail(backbone: Backbone, tail: BackboneTail) -> Backbone:
    """A copy of the whole ``backbone`` with ``tail``'s weights (every tail key must be a backbone key)."""
    whole = copy.deepcopy(backbone)
    own, weights = whole.state_dict(), tail.state_dict()
    wrong = [key for key, value in weights.items() if key not in own or own[key].shape != value.shape]
    if wrong:
        raise ValueError(f"the tail's weights {wrong[:5]} do not fit the backbone {type(backbone).__name__}")
    whole.load_state_dict(weights, strict=False)
    return whole


@BACKBONES.register("tail")
def tail(*, base: str, start: str = "head", **kwargs: Any) -> BackboneTail:
    """The tail from ``start`` of the backbone ``base`` built with ``kwargs`` (its input: the prefix's map)."""
    return split_backbone(BACKBONES.build(base, **kwargs), start)[1]

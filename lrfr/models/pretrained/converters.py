"""Public checkpoint -> lrfr backbone: one :class:`Converter` per publisher family.

A converter knows the publisher's name for every parameter of the matching lrfr backbone
(``key_map``), which entries of the file are not the backbone's (``select``: Lightning's ``model.``
prefix, a training head), and which lrfr backbone each publisher architecture is. Conversion is a
renaming only: the networks are the same, so a converted model computes what the publisher's does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from lrfr.models.base import Backbone
from lrfr.models.pretrained.checkpoint import CheckpointError, match_state_dict, read_checkpoint, state_dict_of

KeyMap = Callable[[str], str]
Rules = Sequence[tuple[str, str]]


def rule_map(rules: Rules) -> KeyMap:
    """A key map from ``(pattern, replacement)`` regex rules on the key; the first match wins."""
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]

    def rename(key: str) -> str:
        for pattern, replacement in compiled:
            renamed, count = pattern.subn(replacement, key, count=1)
            if count:
                return renamed
        raise KeyError(f"no publisher name for parameter {key!r}")

    return rename


def _keep_all(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return state


@dataclass(frozen=True)
class Converter:
    """How one publisher's checkpoints map onto lrfr backbones.

    ``architectures``: publisher architecture name -> lrfr backbone name (``lrfr.models.BACKBONES``).
    ``key_map(model)``: lrfr parameter name -> the publisher's name, for that built model.
    ``select``: the backbone's entries of a file's state dict, under the publisher's names.
    """

    family: str
    architectures: Mapping[str, str]
    key_map: Callable[[Backbone], KeyMap]
    select: Callable[[dict[str, Tensor]], dict[str, Tensor]] = _keep_all
    aliases: Mapping[str, str] = field(default_factory=dict)

    def backbone_name(self, architecture: str) -> str:
        name = self.aliases.get(architecture, architecture)
        if name not in self.architectures:
            raise KeyError(f"{self.family} has no architecture {architecture!r}; expected one of {', '.join(self.architectures)}")
        return self.architectures[name]

    def weights(self, state: Mapping[str, Tensor], model: Backbone, architecture: str, path: str | Path) -> dict[str, Tensor]:
        """``model``'s state dict filled from a publisher state dict (CheckpointError if it does not fit)."""
        return match_state_dict(
            self.select(dict(state)), model.state_dict(), self.key_map(model), f"{self.family} {architecture}", path
        )


def load_converted(
    converter: Converter, architecture: str, path: str | Path, state: Mapping[str, Tensor] | None = None,
    **backbone_kwargs: object,
) -> Backbone:
    """The lrfr backbone for ``architecture`` (eval mode) with the weights of the publisher checkpoint at
    ``path`` (``state``: its state dict, when already read)."""
    from lrfr.models import build_backbone

    state = state_dict_of(read_checkpoint(path), path) if state is None else state
    with torch.device("meta"):  # every tensor comes from the file: skip the random initialisation
        model = build_backbone(converter.backbone_name(architecture), **backbone_kwargs)
    weights = converter.weights(state, model, architecture, path)
    weights = {key: torch.zeros_like(value, device="cpu") if value.is_meta else value for key, value in weights.items()}
    model.to_empty(device="cpu").load_state_dict(weights)
    return model.eval()


def identify(state: Mapping[str, Tensor], converters: Sequence[Converter], path: str | Path) -> tuple[Converter, str]:
    """The converter and architecture whose backbone ``state`` fits exactly.

    None fits: the error of the closest candidate (most keys in common), which names its family and
    the first keys that differ.
    """
    from lrfr.models import build_backbone

    closest: tuple[int, CheckpointError] | None = None
    for converter in converters:
        for architecture, backbone in converter.architectures.items():
            with torch.device("meta"):  # names and shapes only: no memory, no initialisation cost
                model = build_backbone(backbone)
            try:
                converter.weights(state, model, architecture, path)
            except CheckpointError as error:
                rename = converter.key_map(model)
                common = len(set(converter.select(dict(state))) & {rename(k) for k in model.state_dict()})
                if closest is None or common > closest[0]:
                    closest = (common, error)
                continue
            return converter, architecture
    assert closest is not None, "no converters given"
    raise closest[1]

"""AdaFace checkpoints (``adaface_ir{18,50,101}_*.ckpt``, PyTorch Lightning) -> :class:`lrfr.models.adaface_ir.AdaFaceIR`.

The file's ``state_dict`` holds the backbone under ``model.`` and the AdaFace margin head's class
centres under ``head.`` (dropped: they are the training classifier, not the embedding model). The
backbone's names, from AdaFace's ``net.py``: ``input_layer.{0,1,2}`` (conv, BN, PReLU), one flat
``body.{i}`` over all blocks with ``res_layer.{0..5}`` (BN, conv, BN, PReLU, conv, BN) and, where the
widths change, ``shortcut_layer.{0,1}`` (conv, BN); ``output_layer.{0,3,4}`` (BN2d, Linear, BN1d
without affine). Input: **BGR**, (x / 255 - 0.5) / 0.5, 112x112 faces aligned to the ArcFace template
(AdaFace aligns with MTCNN to the same five reference points).
"""

from __future__ import annotations

import re

from torch import Tensor

from lrfr.models.base import Backbone
from lrfr.models.pretrained.converters import Converter, KeyMap

_RESIDUAL = {"residual.0": "res_layer.0", "residual.1.0": "res_layer.1", "residual.1.1": "res_layer.2",
             "residual.1.2": "res_layer.3", "residual.2.0": "res_layer.4", "residual.2.1": "res_layer.5",
             "shortcut.0": "shortcut_layer.0", "shortcut.1": "shortcut_layer.1"}
_TOP = {"body.stem.0": "input_layer.0", "body.stem.1": "input_layer.1", "body.stem.2": "input_layer.2",
        "head.0": "output_layer.0", "head.3": "output_layer.3", "head.4": "output_layer.4"}
_BLOCK = re.compile(r"^body\.stage(\d)\.(\d+)\.(.+)\.(\w+)$")


def key_map(model: Backbone) -> KeyMap:
    """The AdaFace name of each parameter of an :class:`~lrfr.models.adaface_ir.AdaFaceIR` ``model``;
    AdaFace numbers the blocks of all stages in one sequence."""
    stage_lengths = [len(module) for name, module in model.body.named_children() if name.startswith("stage")]
    offsets = [sum(stage_lengths[:i]) for i in range(len(stage_lengths))]

    def rename(key: str) -> str:
        block = _BLOCK.match(key)
        if block:
            stage, index, module, leaf = block.groups()
            return f"body.{offsets[int(stage) - 1] + int(index)}.{_RESIDUAL[module]}.{leaf}"
        module, leaf = key.rsplit(".", 1)
        return f"{_TOP[module]}.{leaf}"

    return rename


def backbone_entries(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The backbone of a Lightning state dict (``model.*``, prefix removed; the ``head.*`` classifier
    dropped); a state dict without ``model.`` keys is taken as the backbone's own."""
    if not any(key.startswith("model.") for key in state):
        return state
    return {key[len("model."):]: value for key, value in state.items() if not key.startswith("head.")}


ADAFACE = Converter(
    family="AdaFace IR",
    architectures={"ir_18": "adaface_ir18", "ir_34": "adaface_ir34", "ir_50": "adaface_ir50", "ir_101": "adaface_ir101"},
    key_map=key_map,
    select=backbone_entries,
    aliases={"adaface_ir18": "ir_18", "adaface_ir34": "ir_34", "adaface_ir50": "ir_50", "adaface_ir101": "ir_101",
             "ir18": "ir_18", "ir34": "ir_34", "ir50": "ir_50", "ir101": "ir_101"},
)

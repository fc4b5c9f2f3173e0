"""insightface ``arcface_torch`` checkpoints (``backbone.pth``: a plain state dict) -> lrfr backbones.

arcface_torch's ``iresnet18/34/50/100`` are :class:`lrfr.models.iresnet.IResNet` and its ``mbf``
(``get_mbf``, blocks (1, 4, 6, 2), scale 2) is :class:`lrfr.models.mobilefacenet.MobileFaceNet`; only the
parameter names differ. The publisher's names, from ``recognition/arcface_torch/backbones``:
IResNet ``conv1/bn1/prelu``, ``layer{s}.{b}.{bn1,conv1,bn2,prelu,conv2,bn3,downsample.0,downsample.1}``,
``bn2``, ``fc``, ``features``; MobileFaceNet ``layers.{0..7}`` (stem, first stage, then three
downsampling blocks each followed by a residual stage), ``conv_sep`` and ``features`` (the GDC head),
every conv-BN(-PReLU) group as a ``layers`` Sequential. Input: RGB, (x - 127.5) / 127.5, 112x112 faces
aligned to the ArcFace template.
"""

from __future__ import annotations

import re

from lrfr.models.base import Backbone
from lrfr.models.pretrained.converters import Converter, KeyMap, rule_map

_BLOCK = r"^body\.stage(\d)\.(\d+)\."
IRESNET_RULES = (
    (r"^body\.stem\.0\.", "conv1."),
    (r"^body\.stem\.1\.", "bn1."),
    (r"^body\.stem\.2\.", "prelu."),
    (_BLOCK + r"residual\.0\.", r"layer\1.\2.bn1."),
    (_BLOCK + r"residual\.1\.0\.", r"layer\1.\2.conv1."),
    (_BLOCK + r"residual\.1\.1\.", r"layer\1.\2.bn2."),
    (_BLOCK + r"residual\.1\.2\.", r"layer\1.\2.prelu."),
    (_BLOCK + r"residual\.2\.0\.", r"layer\1.\2.conv2."),
    (_BLOCK + r"residual\.2\.1\.", r"layer\1.\2.bn3."),
    (_BLOCK + r"shortcut\.(\d)\.", r"layer\1.\2.downsample.\3."),
    (r"^head\.0\.", "bn2."),
    (r"^head\.3\.", "fc."),
    (r"^head\.4\.", "features."),
)
"""lrfr IResNet parameter prefix -> arcface_torch ``IResNet`` prefix."""

_MBF_POSITIONS = {"stem": 0, "stage1": 1, "down2": 2, "stage2": 3, "down3": 4, "stage3": 5, "down4": 6, "stage4": 7}


def _mbf_body(match: re.Match) -> str:
    """``body.<part>.<path>`` -> ``layers.<i>.<path>`` in arcface_torch's nesting.

    arcface_torch wraps every conv-BN(-PReLU) group in a ConvBlock/LinearBlock whose Sequential is
    called ``layers`` (lrfr: ``3.0.weight``, arcface_torch: ``3.layers.0.weight``), and a residual
    stage's blocks in a ``Residual`` whose Sequential is called ``layers`` too.
    """
    part, path = match.group(1), match.group(2)
    if re.match(r"\d+\.layers\.", path):
        path = "layers." + path
    path = re.sub(r"(\d+)\.(\w+)$", r"layers.\1.\2", path)
    return f"layers.{_MBF_POSITIONS[part]}.{path}"


MBF_RULES = (
    (r"^body\.(stem|stage1|down2|stage2|down3|stage3|down4|stage4)\.(.*)$", _mbf_body),
    (r"^body\.conv_sep\.(\d)\.", r"conv_sep.layers.\1."),
    (r"^head\.0\.(\d)\.", r"features.layers.0.layers.\1."),
    (r"^head\.(2|3)\.", r"features.layers.\1."),
)
"""lrfr MobileFaceNet parameter name -> arcface_torch ``MobileFaceNet`` name."""


def key_map(model: Backbone) -> KeyMap:
    """The arcface_torch name of each parameter of ``model`` (an IResNet or a MobileFaceNet)."""
    from lrfr.models.mobilefacenet import MobileFaceNet

    return rule_map(MBF_RULES if isinstance(model, MobileFaceNet) else IRESNET_RULES)


INSIGHTFACE = Converter(
    family="insightface arcface_torch",
    architectures={"r18": "iresnet18", "r34": "iresnet34", "r50": "iresnet50", "r100": "iresnet100", "mbf": "mobilefacenet"},
    key_map=key_map,
    aliases={"iresnet18": "r18", "iresnet34": "r34", "iresnet50": "r50", "iresnet100": "r100", "mobilefacenet": "mbf"},
)

"""The model zoo: the public face-recognition models lrfr loads, what they are, and one call to get any
of them as an :class:`~lrfr.models.embedder.Embedder` (:func:`build_embedder`).

Each family fixes the input spec its publisher trained with and the converter that turns its files
into an lrfr backbone. Only dlib's model comes with a package (``lrfr[dlib]``); for the others the
user downloads the publisher's file and passes it as ``weights`` (or as the model itself: the family
and architecture are then recognised from the file's keys). A sha256 is listed only where the
publisher publishes one; none of these publishers does, so run folders record the sha256 of the
file that was used instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from lrfr.models.adaface_ir import AdaFaceIR
from lrfr.models.base import Backbone
from lrfr.models.dlib_resnet import DlibResNet
from lrfr.models.embedder import BackboneEmbedder, Embedder, InputSpec
from lrfr.models.pretrained.adaface import ADAFACE
from lrfr.models.pretrained.checkpoint import read_checkpoint, state_dict_of
from lrfr.models.pretrained.converters import Converter, identify, load_converted
from lrfr.models.pretrained.dlib import DLIB_SPEC, RESNET_FILE, dlib_embedder, load_dlib_resnet, model_file
from lrfr.models.pretrained.insightface import INSIGHTFACE


@dataclass(frozen=True)
class Family:
    """A publisher's model family: its input spec, test-time flip fusion and converter (None: dlib)."""

    name: str
    spec: InputSpec
    flip_fusion: bool
    converter: Converter | None
    converter_module: str


DLIB_FAMILY = Family("dlib", DLIB_SPEC, False, None, "lrfr.models.pretrained.dlib")
INSIGHTFACE_FAMILY = Family(
    INSIGHTFACE.family,
    # arcface_torch's inference.py reads with OpenCV and converts to RGB; (x / 255 - 0.5) / 0.5.
    InputSpec(size=112, channels="RGB", alignment="arcface"),
    True,  # its evaluation adds the embeddings of the image and its mirror
    INSIGHTFACE,
    "lrfr.models.pretrained.insightface",
)
ADAFACE_FAMILY = Family(
    ADAFACE.family,
    # "our pretrained model takes the input in BGR color channel" (AdaFace README); (x / 255 - 0.5) / 0.5.
    InputSpec(size=112, channels="BGR", alignment="arcface"),
    True,  # AdaFace's validation fuses image and mirror (features weighted by their norms: the sum)
    ADAFACE,
    "lrfr.models.pretrained.adaface",
)
FAMILIES = (DLIB_FAMILY, INSIGHTFACE_FAMILY, ADAFACE_FAMILY)


@dataclass(frozen=True)
class ZooModel:
    """One published model: where it comes from and under which terms, and how lrfr reads it."""

    name: str
    family: Family
    architecture: str  # the publisher's architecture name, as the family's converter knows it
    training_data: str
    source: str
    licence: str
    sha256: str | None = None  # only as the publisher gives it
    bundled: bool = False  # the weights come with an installed package: no download


_INSIGHTFACE_SOURCE = (
    "arcface_torch model zoo (recognition/arcface_torch/README.md): "
    "[OneDrive](https://1drv.ms/u/s!AswpsDO2toNKq0lWY69vN58GR6mw?e=p9Ov5d), "
    "[Baidu](https://pan.baidu.com/s/1CL-l4zWqsI1oDuEEYVhj-g) (code e8pw); file backbone.pth"
)
_INSIGHTFACE_LICENCE = "non-commercial research purposes only (arcface_torch model zoo); code MIT"
_ADAFACE_LICENCE = "MIT (the AdaFace repository's licence; no separate terms stated for the weights)"
_ADAFACE_GDRIVE = {
    ("ir_18", "CASIA-WebFace"): "1BURBDplf2bXpmwOL1WVzqtaVmQl9NpPe",
    ("ir_18", "VGGFace2"): "1k7onoJusC0xjqfjB-hNNaxz9u6eEzFdv",
    ("ir_18", "WebFace4M"): "1J17_QW1Oq00EhSWObISnhWEYr2NNrg2y",
    ("ir_50", "CASIA-WebFace"): "1g1qdg7_HSzkue7_VrW64fnWuHl0YL2C2",
    ("ir_50", "WebFace4M"): "1BmDRrhPsHSbXcWZoYFPJg2KJn1sd3QpN",
    ("ir_50", "MS1MV2"): "1eUaSHG4pGlIZK7hBkqjyp2fc2epKoBvI",
    ("ir_101", "MS1MV2"): "1m757p4-tUU5xlSHLaO04sqnhvqankimN",
    ("ir_101", "MS1MV3"): "1hRI8YhlfTx2YMzyDwsqLTOxbyFVOqpSI",
    ("ir_101", "WebFace4M"): "18jQkqB0avFqWa0Pas52g54xNshUOQJpQ",
    ("ir_101", "WebFace12M"): "1dswnavflETcnAuplZj1IOKKP0eM8ITgT",
}
"""AdaFace README "Pretrained Models": Google Drive file ids per (architecture, training set)."""
_INSIGHTFACE_MODELS = (
    ("mbf", "MS1MV2"), ("r50", "MS1MV2"), ("r100", "MS1MV2"), ("mbf", "MS1MV3"), ("r50", "MS1MV3"),
    ("r100", "MS1MV3"), ("mbf", "Glint360K"), ("r50", "Glint360K"), ("r100", "Glint360K"), ("r100", "WF4M"),
    ("r100", "WF12M"),
)  # fmt: skip
"""arcface_torch README, "Training on Single-Host GPU": the ResNet and MobileFaceNet rows."""


def _slug(training_data: str) -> str:
    """``"CASIA-WebFace"`` -> ``"casia"``, ``"MS1MV2"`` -> ``"ms1mv2"``."""
    return training_data.lower().replace("-webface", "").replace("-", "")


_MODELS = [
    ZooModel(
        "dlib_resnet", DLIB_FAMILY, "dlib_resnet",
        "about 3 million faces of 7,485 identities (FaceScrub, VGG Face and images from the internet; "
        "no LFW identities)",
        "PyPI `face-recognition-models` (dlib_face_recognition_resnet_model_v1.dat); "
        "[dlib.net](http://dlib.net/files/dlib_face_recognition_resnet_model_v1.dat.bz2)",
        "public domain (dlib-models README)",
        bundled=True,
    ),
    *(ZooModel(f"insightface_{arch}_{_slug(data)}", INSIGHTFACE_FAMILY, arch, data, _INSIGHTFACE_SOURCE, _INSIGHTFACE_LICENCE)
      for arch, data in _INSIGHTFACE_MODELS),
    *(ZooModel(f"adaface_{arch.replace('_', '')}_{_slug(data)}", ADAFACE_FAMILY, arch, data,
               f"AdaFace README, Pretrained Models: [Google Drive](https://drive.google.com/file/d/{file_id}/view)",
               _ADAFACE_LICENCE)
      for (arch, data), file_id in _ADAFACE_GDRIVE.items()),
]  # fmt: skip
ZOO: dict[str, ZooModel] = {model.name: model for model in _MODELS}


def family_embedder(
    family: Family, architecture: str, weights: str | Path, flip_fusion: bool | None = None,
    state: dict[str, Tensor] | None = None,
) -> Embedder:
    """The checkpoint ``weights`` (``state``: its state dict, when already read) of ``family``'s
    ``architecture``, converted, behind the family's input spec; ``flip_fusion`` None: the family's."""
    fuse = family.flip_fusion if flip_fusion is None else flip_fusion
    if family.converter is None:
        return dlib_embedder(weights, flip_fusion=fuse)
    backbone = load_converted(family.converter, architecture, weights, state=state)
    return BackboneEmbedder(backbone, flip_fusion=fuse, spec=family.spec)


def build_embedder(model: str | Path, weights: str | Path | None = None, flip_fusion: bool | None = None) -> Embedder:
    """Any model lrfr can load, as an Embedder (eval mode, CPU; ``.to(device)`` it).

    ``model``: a zoo name (:data:`ZOO`; all but ``dlib_resnet`` need ``weights``, the publisher's file),
    a dlib ``.dat`` file, a publisher checkpoint (family and architecture recognised from its keys),
    or a run folder trained here. ``flip_fusion`` None: the family's own test-time convention.
    """
    if str(model) in ZOO:
        entry = ZOO[str(model)]
        if weights is None and not entry.bundled:
            raise ValueError(f"{entry.name} needs its weights file: download it from {entry.source} and pass weights=PATH")
        return family_embedder(entry.family, entry.architecture, weights, flip_fusion)  # type: ignore[arg-type]
    path = Path(model)
    if path.is_dir():
        from lrfr.experiments.workflow import whole_backbone

        return BackboneEmbedder(whole_backbone(path), flip_fusion=bool(flip_fusion))
    if path.suffix == ".dat":
        return family_embedder(DLIB_FAMILY, "dlib_resnet", path, flip_fusion)
    if path.is_file():
        state = state_dict_of(read_checkpoint(path), path)
        converter, architecture = identify(state, [INSIGHTFACE, ADAFACE], path)
        family = next(f for f in FAMILIES if f.converter is converter)
        return family_embedder(family, architecture, path, flip_fusion, state=state)
    raise KeyError(
        f"unknown model {str(model)!r}: expected a zoo name ({', '.join(ZOO)}), a checkpoint file or a run folder"
    )


def backbone_weights(path: str | Path, backbone: Backbone) -> dict[str, Tensor]:
    """``backbone``'s state dict from a publisher's file: a dlib ``.dat`` for the dlib ResNet, an
    AdaFace checkpoint for an AdaFace IR, an arcface_torch one for an IResNet or MobileFaceNet
    (how :class:`~lrfr.training.ModelSpec` ``pretrained`` starts training from a public model)."""
    if isinstance(backbone, DlibResNet):
        return load_dlib_resnet(path).state_dict()
    converter = ADAFACE if isinstance(backbone, AdaFaceIR) else INSIGHTFACE
    state = state_dict_of(read_checkpoint(path), path)
    return converter.weights(state, backbone, f"({type(backbone).__name__})", path)


def spec_text(spec: InputSpec) -> str:
    """An input spec in a few words: ``112x112 BGR, (x - 127.5) / 127.5, arcface``."""
    size = "any size" if spec.size is None else f"{spec.size[0]}x{spec.size[1]}"
    mean = f"{spec.mean[0]:g}" if len(set(spec.mean)) == 1 else "(" + ", ".join(f"{m:g}" for m in spec.mean) + ")"
    std = f"{spec.std[0]:g}" if len(set(spec.std)) == 1 else "(" + ", ".join(f"{s:g}" for s in spec.std) + ")"
    return f"{size} {spec.channels}, (x - {mean}) / {std}, {spec.alignment or 'no'} alignment"


def zoo_table() -> str:
    """The model zoo as a Markdown table (the book's model zoo page holds exactly this)."""
    header = "| name | family | architecture | training data | source | sha256 | licence | input | converter |"
    rows = [header, "|" + "---|" * 9]
    for entry in ZOO.values():
        family = entry.family
        cells = (
            f"`{entry.name}`", family.name, entry.architecture, entry.training_data, entry.source,
            entry.sha256 or "not published", entry.licence, spec_text(family.spec),
            f"`{family.converter_module}`" + (" (installed with `lrfr[dlib]`)" if entry.bundled else ""),
        )
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)


def weights_file(model: str | Path, weights: str | Path | None = None) -> Path | None:
    """The file whose weights ``build_embedder(model, weights)`` loads (None for a run folder)."""
    if weights is not None:
        return Path(weights)
    if str(model) in ZOO and ZOO[str(model)].bundled:
        return model_file(RESNET_FILE)
    return Path(model) if Path(model).is_file() else None

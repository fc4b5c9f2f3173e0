"""dlib's face-recognition ResNet: its ``.dat`` weights into :class:`lrfr.models.dlib_resnet.DlibResNet`.

The weights ship in the PyPI package ``face-recognition-models``
(``face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat``); they are found
without importing that package (its ``__init__`` needs ``pkg_resources``) and read with
:mod:`lrfr.models.pretrained.dlib_format`, so neither dlib nor a download is needed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lrfr.models.dlib_resnet import DLIB_INPUT_SIZE, DLIB_LEVELS, DlibResNet, set_affine
from lrfr.models.embedder import BackboneEmbedder, InputSpec
from lrfr.models.pretrained.dlib_format import DlibLayer, DlibNetwork, LayerKind, read_network

MODELS_PACKAGE = "face_recognition_models"
RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_PREDICTOR_5_FILE = "shape_predictor_5_face_landmarks.dat"
INSTALL_HINT = "pip install 'lrfr[dlib]' (or: pip install face-recognition-models dlib-bin)"
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)
"""dlib's ``input_rgb_image_sized`` channel means (also stored in the .dat file, checked on loading)."""
DLIB_SPEC = InputSpec(size=DLIB_INPUT_SIZE, channels="RGB", mean=DLIB_MEAN_RGB, std=(256.0, 256.0, 256.0), alignment="dlib")
"""dlib's input: 150x150 RGB dlib face chips (:mod:`lrfr.data.dlib_align`), (pixel - mean) / 256."""


class ModelFileMissing(FileNotFoundError):
    """A model file of ``face-recognition-models`` is not installed; the message says how to get it."""


def model_file(name: str) -> Path:
    """The path of ``name`` in the installed ``face_recognition_models`` package."""
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileMissing(f"{name} comes with the package face-recognition-models, which is not installed: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise ModelFileMissing(f"{path} is missing from the installed face-recognition-models; reinstall it: {INSTALL_HINT}")
    return path


def _block_plan(downsample: bool) -> list[LayerKind]:
    """``relu(add_prev1(affine(con(relu(affine(con(tag1)))))))``; downsampling adds ``tag2``,
    ``skip1`` and the average pool before the sum (dlib's ``residual_down``)."""
    kinds = [LayerKind.TAG, LayerKind.CON, LayerKind.AFFINE, LayerKind.RELU, LayerKind.CON, LayerKind.AFFINE]
    if downsample:
        kinds += [LayerKind.TAG, LayerKind.SKIP, LayerKind.AVG_POOL]
    return kinds + [LayerKind.ADD_PREV, LayerKind.RELU]


def resnet_plan() -> list[LayerKind]:
    """The layers of dlib's ``anet_type`` above its input, input to output (its C++ type as data)."""
    plan = [LayerKind.CON, LayerKind.AFFINE, LayerKind.RELU, LayerKind.MAX_POOL]
    for _, blocks, downsample in DLIB_LEVELS:
        for i in range(blocks):
            plan += _block_plan(downsample and i == 0)
    return plan + [LayerKind.AVG_POOL, LayerKind.FC]


def _check(layer: DlibLayer, index: int, expected: dict[str, object], source: str) -> None:
    wrong = {k: (layer.attributes.get(k), v) for k, v in expected.items() if layer.attributes.get(k) != v}
    if wrong:
        details = ", ".join(f"{k}={got} (expected {want})" for k, (got, want) in wrong.items())
        raise ValueError(f"{source}: {layer.kind.value} layer {index} does not match the dlib ResNet: {details}")


@torch.no_grad()
def _load_conv(conv: nn.Conv2d, layer: DlibLayer, index: int, source: str) -> None:
    shape = tuple(conv.weight.shape)
    _check(layer, index, {
        "filters": shape, "stride_y": conv.stride[0], "stride_x": conv.stride[1],
        "padding_y": conv.padding[0], "padding_x": conv.padding[1], "use_bias": True,
    }, source)
    params = layer.tensors["params"].ravel()
    weights = int(np.prod(shape))
    if params.size != weights + shape[0]:
        raise ValueError(f"{source}: con layer {index} holds {params.size} values; expected {weights + shape[0]}")
    conv.weight.copy_(torch.from_numpy(params[:weights].reshape(shape)))
    conv.bias.copy_(torch.from_numpy(params[weights:]))


@torch.no_grad()
def _load_affine(norm: nn.BatchNorm2d, layer: DlibLayer, index: int, source: str) -> None:
    channels = norm.num_features
    _check(layer, index, {"gamma": (1, channels, 1, 1), "mode": "conv", "disabled": False}, source)
    params = torch.from_numpy(layer.tensors["params"].ravel())
    set_affine(norm, params[:channels], params[channels:])


@torch.no_grad()
def _load_fc(linear: nn.Linear, layer: DlibLayer, index: int, source: str) -> None:
    _check(layer, index, {"num_inputs": linear.in_features, "num_outputs": linear.out_features, "use_bias": False}, source)
    # dlib's fc computes x @ W with W of shape (num_inputs, num_outputs).
    weights = layer.tensors["params"].reshape(linear.in_features, linear.out_features)
    linear.weight.copy_(torch.from_numpy(weights.T.copy()))


def load_weights(model: DlibResNet, network: DlibNetwork, source: str) -> DlibResNet:
    """Copy the parameters of a deserialised dlib network into ``model`` (module order = layer order)."""
    loaders = {nn.Conv2d: (LayerKind.CON, _load_conv), nn.BatchNorm2d: (LayerKind.AFFINE, _load_affine), nn.Linear: (LayerKind.FC, _load_fc)}
    targets = [m for m in model.modules() if type(m) in loaders]
    stored = [layer for layer in network.layers if layer.kind in (LayerKind.CON, LayerKind.AFFINE, LayerKind.FC)]
    if len(targets) != len(stored):
        raise ValueError(f"{source}: {len(stored)} parameter layers; the dlib ResNet has {len(targets)}")
    for index, (module, layer) in enumerate(zip(targets, stored)):
        kind, load = loaders[type(module)]
        if layer.kind is not kind:
            raise ValueError(f"{source}: layer {index} is {layer.kind.value}; expected {kind.value}")
        load(module, layer, index, source)
    return model


def load_dlib_resnet(path: str | Path | None = None) -> DlibResNet:
    """dlib's trained face-recognition ResNet as a torch module in eval mode.

    ``path`` defaults to the ``.dat`` file of the installed ``face-recognition-models``.
    """
    path = Path(path) if path is not None else model_file(RESNET_FILE)
    network = read_network(path, resnet_plan())
    size = (network.input["rows"], network.input["columns"])
    if size != (DLIB_INPUT_SIZE, DLIB_INPUT_SIZE):
        raise ValueError(f"{path}: input size {size}; the dlib ResNet takes {DLIB_INPUT_SIZE}x{DLIB_INPUT_SIZE}")
    if not np.allclose(network.input["mean_rgb"], DLIB_MEAN_RGB, atol=1e-4):
        raise ValueError(f"{path}: input means {network.input['mean_rgb']}; dlib's ResNet subtracts {DLIB_MEAN_RGB}")
    return load_weights(DlibResNet(), network, str(path)).eval()


def dlib_embedder(path: str | Path | None = None, flip_fusion: bool = False) -> BackboneEmbedder:
    """The torch port of dlib's ResNet behind dlib's input spec (no flip fusion: dlib has none)."""
    return BackboneEmbedder(load_dlib_resnet(path), flip_fusion=flip_fusion, spec=DLIB_SPEC)


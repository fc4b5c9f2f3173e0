"""Public checkpoints -> lrfr backbones: insightface arcface_torch and AdaFace, safe reading, clear refusals.

No publisher file can be downloaded here, so each test writes one: an lrfr model's weights renamed to
the publisher's parameter names, in the publisher's container (plain state dict / Lightning .ckpt).
The publisher names are generated below from the publishers' module structure (arcface_torch
``backbones/iresnet.py`` and ``mobilefacenet.py``, AdaFace ``net.py``), in their definition order,
independently of the converters' renaming rules; the converted model must compute exactly what the
original did.
"""

from __future__ import annotations

import argparse
import collections
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lrfr.models import build_backbone
from lrfr.models.pretrained.adaface import ADAFACE
from lrfr.models.pretrained.checkpoint import CheckpointError, read_checkpoint, state_dict_of
from lrfr.models.pretrained.converters import identify, load_converted
from lrfr.models.pretrained.insightface import INSIGHTFACE

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
WIDTHS = (64, 128, 256, 512)


def bn(prefix: str, affine: bool = True) -> list[str]:
    return [f"{prefix}.{p}" for p in (BN if affine else BN[2:])]


def arcface_iresnet_keys(layers: tuple[int, ...]) -> list[str]:
    """arcface_torch IResNet: conv1, bn1, prelu, layer{s}.{b} (bn1 conv1 bn2 prelu conv2 bn3 [downsample]), bn2, fc, features."""
    keys = ["conv1.weight", *bn("bn1"), "prelu.weight"]
    for stage, blocks in enumerate(layers, 1):
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            keys += [*bn(f"{p}.bn1"), f"{p}.conv1.weight", *bn(f"{p}.bn2"), f"{p}.prelu.weight", f"{p}.conv2.weight", *bn(f"{p}.bn3")]
            if b == 0:  # every stage strides: a 1x1 conv + BN projection
                keys += [f"{p}.downsample.0.weight", *bn(f"{p}.downsample.1")]
    return keys + [*bn("bn2"), "fc.weight", "fc.bias", *bn("features")]


def arcface_mbf_keys(blocks: tuple[int, int, int, int]) -> list[str]:
    """arcface_torch MobileFaceNet: layers[0..7] (ConvBlock, first stage, DepthWise/Residual pairs), conv_sep, GDC."""

    def conv_block(p: str) -> list[str]:  # ConvBlock: Sequential(conv, BN, PReLU) called "layers"
        return [f"{p}.layers.0.weight", *bn(f"{p}.layers.1"), f"{p}.layers.2.weight"]

    def depthwise(p: str) -> list[str]:  # DepthWise.layers = ConvBlock, ConvBlock, LinearBlock(conv, BN)
        return [*conv_block(f"{p}.layers.0"), *conv_block(f"{p}.layers.1"), f"{p}.layers.2.layers.0.weight", *bn(f"{p}.layers.2.layers.1")]

    def residual(p: str, n: int) -> list[str]:  # Residual.layers = n DepthWise
        return [k for j in range(n) for k in depthwise(f"{p}.layers.{j}")]

    keys = conv_block("layers.0")
    keys += conv_block("layers.1") if blocks[0] == 1 else residual("layers.1", blocks[0])
    for i, n in zip((2, 4, 6), blocks[1:]):
        keys += depthwise(f"layers.{i}") + residual(f"layers.{i + 1}", n)
    keys += conv_block("conv_sep")
    return keys + ["features.layers.0.layers.0.weight", *bn("features.layers.0.layers.1"), "features.layers.2.weight", *bn("features.layers.3")]


def adaface_keys(layers: tuple[int, ...]) -> list[str]:
    """AdaFace Backbone: input_layer, body.{i} (shortcut_layer where widths change, res_layer.0-5), output_layer."""
    keys = ["input_layer.0.weight", *bn("input_layer.1"), "input_layer.2.weight"]
    index, channels = 0, 64
    for depth, blocks in zip(WIDTHS, layers):
        for b in range(blocks):
            p = f"body.{index}"
            keys += [*bn(f"{p}.res_layer.0"), f"{p}.res_layer.1.weight", *bn(f"{p}.res_layer.2"), f"{p}.res_layer.3.weight",
                     f"{p}.res_layer.4.weight", *bn(f"{p}.res_layer.5")]  # fmt: skip
            # AdaFace defines shortcut_layer before res_layer; listed after it here, in lrfr's order.
            if b == 0 and channels != depth:  # MaxPool2d(1, stride) shortcut otherwise: no parameters
                keys += [f"{p}.shortcut_layer.0.weight", *bn(f"{p}.shortcut_layer.1")]
            index, channels = index + 1, depth
    return keys + [*bn("output_layer.0"), "output_layer.3.weight", "output_layer.3.bias", *bn("output_layer.4", affine=False)]


def randomised(name: str, **kwargs: object) -> torch.nn.Module:
    """A backbone whose every tensor matters: BatchNorm statistics estimated on one random batch (a
    stable eval-mode network), then every 1-d parameter (BN scale and shift, PReLU slopes, biases)
    perturbed, so that any two tensors swapped by a wrong mapping change the output."""
    torch.manual_seed(0)
    model = build_backbone(name, **kwargs)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # cumulative average: after one batch, exactly its statistics
    with torch.no_grad():
        model.train()(torch.randn(4, 3, *model.input_size))
        for key, value in model.state_dict().items():
            if value.is_floating_point() and value.ndim == 1 and not key.endswith(("running_mean", "running_var")):
                value.add_(torch.randn_like(value) * 0.1)
    return model.eval()


def published(model: torch.nn.Module, keys: list[str]) -> dict[str, torch.Tensor]:
    """``model``'s weights under the publisher's names (definition order on both sides)."""
    ours = model.state_dict()
    assert len(keys) == len(ours), f"publisher layout has {len(keys)} tensors, the lrfr model {len(ours)}"
    return {key: value.clone() for key, value in zip(keys, ours.values())}


def outputs(model: torch.nn.Module, size: int = 112) -> torch.Tensor:
    """The model's embeddings of two random images (checked to differ: the output depends on the input)."""
    with torch.no_grad():
        embedded = model(torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1)))
    assert (embedded[0] - embedded[1]).abs().max() > 1e-3 * embedded.abs().max()
    return embedded


@pytest.fixture
def fake_lightning(monkeypatch: pytest.MonkeyPatch) -> type:
    """A stand-in ``pytorch_lightning`` whose AttributeDict/ModelCheckpoint pickle under their real names."""
    parsing = types.ModuleType("pytorch_lightning.utilities.parsing")
    callbacks = types.ModuleType("pytorch_lightning.callbacks.model_checkpoint")

    class AttributeDict(dict):
        pass

    class ModelCheckpoint:
        pass

    AttributeDict.__module__, ModelCheckpoint.__module__ = parsing.__name__, callbacks.__name__
    AttributeDict.__qualname__, ModelCheckpoint.__qualname__ = "AttributeDict", "ModelCheckpoint"
    parsing.AttributeDict, callbacks.ModelCheckpoint = AttributeDict, ModelCheckpoint
    for name in ("pytorch_lightning", "pytorch_lightning.utilities", "pytorch_lightning.callbacks"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, parsing.__name__, parsing)
    monkeypatch.setitem(sys.modules, callbacks.__name__, callbacks)
    return AttributeDict, ModelCheckpoint


def lightning_checkpoint(state: dict[str, torch.Tensor], path: Path, lightning: tuple[type, type]) -> Path:
    """AdaFace's .ckpt: Lightning metadata, the backbone under ``model.``, the margin head's ``head.kernel``."""
    attribute_dict, model_checkpoint = lightning
    torch.save(
        {
            "epoch": 25, "global_step": 1000, "pytorch-lightning_version": "1.8.6",
            "state_dict": {**{f"model.{k}": v for k, v in state.items()}, "head.kernel": torch.randn(512, 10)},
            "hyper_parameters": attribute_dict(arch="ir_50", head="adaface", m=0.4, args=argparse.Namespace(lr=0.1)),
            "callbacks": {model_checkpoint: {"best_model_score": torch.tensor(0.97)}},
            "lr_schedulers": [{"milestones": collections.Counter([12, 20, 24]), "gamma": 0.1}],
        },
        path,
    )  # fmt: skip
    return path


@pytest.mark.parametrize(("architecture", "layers", "size"), [("r18", (2, 2, 2, 2), 112), ("r50", (3, 4, 14, 3), 32)])
def test_insightface_iresnet_converts_exactly(tmp_path: Path, architecture: str, layers: tuple[int, ...], size: int) -> None:
    original = randomised(INSIGHTFACE.backbone_name(architecture), input_size=size)
    path = tmp_path / "backbone.pth"
    torch.save(published(original, arcface_iresnet_keys(layers)), path)
    converted = load_converted(INSIGHTFACE, architecture, path, input_size=size)
    assert torch.equal(outputs(converted, size), outputs(original, size))
    if architecture == "r50":
        assert len(arcface_iresnet_keys(layers)) == 475  # issue 14: insightface r50 / lrfr iresnet50 entries


@pytest.mark.parametrize("blocks", [(1, 4, 6, 2), (2, 4, 6, 2)])
def test_insightface_mobilefacenet_converts_exactly(tmp_path: Path, blocks: tuple[int, int, int, int]) -> None:
    original = randomised("mobilefacenet", blocks=blocks)
    path = tmp_path / "backbone.pth"
    torch.save({f"module.{k}": v for k, v in published(original, arcface_mbf_keys(blocks)).items()}, path)  # saved from DDP
    converted = load_converted(INSIGHTFACE, "mbf", path, blocks=blocks)
    assert torch.equal(outputs(converted), outputs(original))


def test_adaface_lightning_checkpoint_converts_exactly(tmp_path: Path, fake_lightning: tuple[type, type]) -> None:
    original = randomised("adaface_ir18")
    path = lightning_checkpoint(published(original, adaface_keys((2, 2, 2, 2))), tmp_path / "adaface_ir18_webface4m.ckpt", fake_lightning)
    sys.modules.pop("pytorch_lightning.utilities.parsing")  # reading must not need Lightning
    converted = load_converted(ADAFACE, "ir_18", path)
    assert torch.equal(outputs(converted), outputs(original))
    assert len(adaface_keys((3, 4, 14, 3))) == 467  # issue 14: AdaFace IR-50 entries (lrfr iresnet50: 475)


def test_identify_finds_family_and_architecture(tmp_path: Path) -> None:
    files = {
        ("insightface arcface_torch", "r18"): published(randomised("iresnet18"), arcface_iresnet_keys((2, 2, 2, 2))),
        ("AdaFace IR", "ir_18"): {f"model.{k}": v for k, v in published(randomised("adaface_ir18"), adaface_keys((2, 2, 2, 2))).items()},
        ("insightface arcface_torch", "mbf"): published(randomised("mobilefacenet"), arcface_mbf_keys((1, 4, 6, 2))),
    }
    for (family, architecture), state in files.items():
        converter, found = identify(state, [INSIGHTFACE, ADAFACE], "file")
        assert (converter.family, found) == (family, architecture)


def test_mismatched_checkpoint_names_family_and_first_differing_keys(tmp_path: Path) -> None:
    # An insightface r18 file given as AdaFace: it has the projection shortcut of the first block and
    # the output BN1d's affine weight, which AdaFace's IR does not; and its names are insightface's.
    state = published(randomised("iresnet18"), arcface_iresnet_keys((2, 2, 2, 2)))
    path = tmp_path / "backbone.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"is not a AdaFace IR ir_18 checkpoint: missing input_layer\.0\.weight, .*unexpected conv1\.weight"):
        load_converted(ADAFACE, "ir_18", path)
    with pytest.raises(CheckpointError, match=r"insightface arcface_torch r50 checkpoint: missing layer1\.2\.bn1\.weight, .* \(\+235 more\) \(187 tensors in the file, 475 in the model\)"):
        load_converted(INSIGHTFACE, "r50", path)
    # AdaFace's names on an IResNet's weights: exactly the 8 extra tensors differ.
    iresnet_as_adaface = dict(zip(adaface_keys((2, 2, 2, 2)), state.values()))
    with pytest.raises(CheckpointError, match="AdaFace IR ir_18 checkpoint: .*shapes differ"):
        ADAFACE.weights(iresnet_as_adaface, build_backbone("adaface_ir18"), "ir_18", "file")
    with pytest.raises(CheckpointError, match=r"AdaFace IR ir_18 checkpoint: .*\(188 tensors in the file, 179 in the model\)"):
        identify({**state, "extra": torch.zeros(1)}, [ADAFACE], "file")


def test_executable_pickle_is_refused_before_it_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').close()",))

    path = tmp_path / "malicious.ckpt"
    torch.save({"state_dict": published(randomised("iresnet18"), arcface_iresnet_keys((2, 2, 2, 2))), "x": Payload()}, path)
    with pytest.raises(CheckpointError, match=r"refusing to load .*malicious\.ckpt: it holds the pickled object exec,"):
        load_converted(INSIGHTFACE, "r18", path)
    assert not marker.exists()


def test_safetensors_and_unreadable_files(tmp_path: Path) -> None:
    original = randomised("iresnet18")
    path = tmp_path / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in published(original, arcface_iresnet_keys((2, 2, 2, 2))).items()}, path)
    assert torch.equal(outputs(load_converted(INSIGHTFACE, "r18", path)), outputs(original))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="garbage.pth"):
        read_checkpoint(garbage)
    with pytest.raises(CheckpointError, match=r"holds no state dict: .*keys \['epoch'\]"):
        state_dict_of({"epoch": 3}, "x.ckpt")

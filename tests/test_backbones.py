"""The backbone registry: the common contract for every backbone, and the known architectures."""

from __future__ import annotations

import math

import pytest
import torch

from lrfr.models import BACKBONES, BackboneOutput, build_backbone, image_backbones
from lrfr.models.iresnet import IBasicBlock

BASELINES = {"deepid2", "vgg"}  # Cheng et al. Table 3's baselines: valid convolutions, own sizes (test_generic_baselines)
NAMES = [name for name in image_backbones() if name != "dlib_resnet" and name not in BASELINES]  # dlib: >= 103 px, own tests
HEAVY = {"iresnet100", "adaface_ir101", "resnet50"}  # batch 1 at 112x112 to keep the CPU run short
STRIDE = {"resnet34": 32, "resnet50": 32}  # every other backbone downsamples by 16


def images(size: tuple[int, int], batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0))


def calibrated(model: torch.nn.Module, size: tuple[int, int]) -> torch.nn.Module:
    """Eval mode with BatchNorm statistics estimated on one batch.

    With insightface's N(0, 0.1) conv init the default running statistics (0, 1) let a deep IResNet's
    activations overflow in eval mode before any training.
    """
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.momentum = None  # cumulative average: after one batch, exactly its statistics
    with torch.no_grad():
        model.train()(images(size))
    return model.eval()


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_all_backbones_registered() -> None:
    assert set(BACKBONES.names()) == {
        "iresnet18", "iresnet34", "iresnet50", "iresnet100", "mobilefacenet", "quick", "resnet34", "resnet50",
        "adaface_ir18", "adaface_ir34", "adaface_ir50", "adaface_ir101", "dlib_resnet", "tail", *BASELINES,
    }  # fmt: skip
    assert "tail" not in image_backbones()  # it reads a frozen prefix's maps (lrfr.models.tail)


@pytest.mark.parametrize("size", [112, 32])
@pytest.mark.parametrize("name", NAMES)
def test_forward_contract(name: str, size: int) -> None:
    model = calibrated(build_backbone(name, input_size=size), (size, size))
    batch = 1 if name in HEAVY and size == 112 else 2
    x = images((size, size), batch)
    with torch.no_grad():
        embedding = model(x)
        output = model(x, return_feature_map=True)
        recomposed = model.embed(model.features(x))
    assert model.input_size == (size, size)
    assert embedding.shape == (batch, model.embedding_size) == (batch, 512)
    assert torch.isfinite(embedding).all()
    assert isinstance(output, BackboneOutput)
    assert output.feature_map.shape == (batch, model.feature_channels, *model.feature_map_size)
    torch.testing.assert_close(output.embedding, embedding)
    torch.testing.assert_close(recomposed, embedding)


@pytest.mark.parametrize("name", NAMES)
def test_head_adapts_to_non_square_input(name: str) -> None:
    size = (48, 80)
    model = build_backbone(name, input_size=size).eval()
    stride = STRIDE.get(name, 16)
    assert model.feature_map_size == (math.ceil(48 / stride), math.ceil(80 / stride))
    with torch.no_grad():
        assert model(images(size)).shape == (2, 512)


@pytest.mark.parametrize("name", NAMES)
def test_embedding_size_override(name: str) -> None:
    model = build_backbone(name, input_size=32, embedding_size=64).eval()
    with torch.no_grad():
        assert model(images((32, 32))).shape == (2, 64)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_the_feature_map(name: str) -> None:
    model = build_backbone(name, input_size=32).train()
    output = model(images((32, 32)), return_feature_map=True)
    output.feature_map.retain_grad()
    # A random projection: the sum of a train-mode BatchNorm1d output has zero gradient.
    (output.embedding * torch.randn_like(output.embedding)).sum().backward()
    assert output.feature_map.grad is not None
    assert output.feature_map.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_wrong_input_size_names_both_sizes(name: str) -> None:
    model = build_backbone(name, input_size=32).eval()
    with pytest.raises(ValueError, match=r"\(48, 48\).*\(32, 32\).*input_size="):
        model(images((48, 48)))


@pytest.mark.parametrize("bad", [torch.zeros(3, 32, 32), torch.zeros(2, 1, 32, 32)])
def test_rejects_malformed_images(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        build_backbone("quick")(bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"embedding_size": 0}, "embedding_size"),
        ({"input_size": 8}, "too small"),
        ({"input_size": (32, 0)}, "input_size"),
    ],
)
def test_rejects_bad_constructor_arguments(kwargs: dict, message: str) -> None:
    for name in ("quick", "mobilefacenet"):
        with pytest.raises(ValueError, match=message):
            build_backbone(name, **kwargs)


def test_unknown_name_lists_the_registered_ones() -> None:
    with pytest.raises(KeyError, match="iresnet50.*mobilefacenet"):
        build_backbone("resnet9000")


# Known architectures: parameter counts written out independently of the implementation.


def conv(c_in: int, c_out: int, kernel: int, groups: int = 1) -> int:
    return c_in // groups * c_out * kernel * kernel


def bn(channels: int) -> int:
    return 2 * channels


def flatten_head(channels: int, map_area: int, embedding: int) -> int:
    """BN2d -> Linear (with bias) -> BN1d."""
    return bn(channels) + channels * map_area * embedding + embedding + bn(embedding)


def iresnet_params(layers: tuple[int, ...], map_area: int = 49, embedding: int = 512) -> int:
    """Stem conv-BN-PReLU; IBasicBlock = BN, conv3x3, BN, PReLU, conv3x3, BN (+ 1x1 projection)."""

    def block(c_in: int, c_out: int) -> int:
        return bn(c_in) + conv(c_in, c_out, 3) + bn(c_out) + c_out + conv(c_out, c_out, 3) + bn(c_out)

    total = conv(3, 64, 3) + bn(64) + 64
    widths = (64, 64, 128, 256, 512)
    for c_in, c_out, blocks in zip(widths, widths[1:], layers):
        total += block(c_in, c_out) + conv(c_in, c_out, 1) + bn(c_out) + (blocks - 1) * block(c_out, c_out)
    return total + flatten_head(512, map_area, embedding)


def mobilefacenet_params(scale: int = 2, embedding: int = 512) -> int:
    """insightface get_mbf with blocks (1, 4, 6, 2): ConvBlock = conv-BN-PReLU, LinearBlock = conv-BN."""

    def conv_block(c_in: int, c_out: int, kernel: int, groups: int = 1) -> int:
        return conv(c_in, c_out, kernel, groups) + bn(c_out) + c_out

    def depthwise(c_in: int, c_out: int, groups: int) -> int:
        linear = conv(groups, c_out, 1) + bn(c_out)
        return conv_block(c_in, groups, 1) + conv_block(groups, groups, 3, groups) + linear

    narrow, wide = 64 * scale, 128 * scale
    body = (
        conv_block(3, narrow, 3)
        + conv_block(narrow, narrow, 3, groups=64)
        + depthwise(narrow, narrow, 128) + 4 * depthwise(narrow, narrow, 128)
        + depthwise(narrow, wide, 256) + 6 * depthwise(wide, wide, 256)
        + depthwise(wide, wide, 512) + 2 * depthwise(wide, wide, 256)
        + conv_block(wide, 512, 1)
    )  # fmt: skip
    gdc = conv(512, 512, 7, groups=512) + bn(512) + 512 * embedding + bn(embedding)
    return body + gdc


def resnet34_params(map_area: int = 16) -> int:
    """conv7x7-BN stem; BasicBlock = conv3x3, BN, conv3x3, BN (+ 1x1 projection); 4x4 map at 112."""

    def block(c_in: int, c_out: int) -> int:
        projection = conv(c_in, c_out, 1) + bn(c_out) if c_in != c_out else 0
        return conv(c_in, c_out, 3) + bn(c_out) + conv(c_out, c_out, 3) + bn(c_out) + projection

    total = conv(3, 64, 7) + bn(64)
    widths = (64, 64, 128, 256, 512)
    for c_in, c_out, blocks in zip(widths, widths[1:], (3, 4, 6, 3)):
        total += block(c_in, c_out) + (blocks - 1) * block(c_out, c_out)
    return total + flatten_head(512, map_area, 512)


@pytest.mark.parametrize(
    ("name", "layers", "low", "high"),
    [("iresnet50", (3, 4, 14, 3), 43.5e6, 43.7e6), ("iresnet100", (3, 13, 30, 3), 65.1e6, 65.2e6)],
)
def test_iresnet_parameter_count(name: str, layers: tuple[int, ...], low: float, high: float) -> None:
    count = parameter_count(build_backbone(name))
    assert count == iresnet_params(layers)
    assert low < count < high  # insightface: r50 43.6M, r100 65.2M with 512-d embeddings


def test_mobilefacenet_parameter_count() -> None:
    count = parameter_count(build_backbone("mobilefacenet"))
    assert count == mobilefacenet_params() and 2.0e6 < count < 2.1e6  # scale 2 (insightface mbf)
    paper = parameter_count(build_backbone("mobilefacenet", scale=1, embedding_size=128))
    assert paper == mobilefacenet_params(scale=1, embedding=128) and 0.98e6 < paper < 1.02e6  # 0.99M


def test_resnet34_parameter_count() -> None:
    model = build_backbone("resnet34")
    assert model.feature_map_size == (4, 4)
    assert parameter_count(model) == resnet34_params()


def test_resnet50_body_has_torchvisions_parameter_count() -> None:
    model = build_backbone("resnet50")
    assert model.feature_channels == 2048 and model.feature_map_size == (4, 4)
    # torchvision's resnet50: 25,557,032 parameters, of which the 1000-class fc holds 2048 * 1000 + 1000
    assert parameter_count(model.body) == 25_557_032 - 2_049_000
    assert parameter_count(model.head) == flatten_head(2048, 16, 512)


@pytest.mark.parametrize(
    ("name", "layers"),
    [("iresnet18", (2, 2, 2, 2)), ("iresnet34", (3, 4, 6, 3)), ("iresnet50", (3, 4, 14, 3)),
     ("iresnet100", (3, 13, 30, 3))],
)  # fmt: skip
def test_iresnet_blocks_per_stage(name: str, layers: tuple[int, ...]) -> None:
    model = build_backbone(name, input_size=16)
    stages = [getattr(model.body, f"stage{i}") for i in range(1, 5)]
    assert tuple(sum(isinstance(m, IBasicBlock) for m in stage.modules()) for stage in stages) == layers
    assert not hasattr(model.body, "stage5")


def test_iresnet_output_scale_is_frozen_as_insightface() -> None:
    output_norm = build_backbone("iresnet18", input_size=32).head[-1]
    assert isinstance(output_norm, torch.nn.BatchNorm1d)
    assert not output_norm.weight.requires_grad and bool((output_norm.weight == 1).all())


@pytest.mark.parametrize(("name", "layers"), [("adaface_ir50", (3, 4, 14, 3)), ("adaface_ir101", (3, 13, 30, 3))])
def test_adaface_ir_is_iresnet_without_first_projection_and_output_affine(name: str, layers: tuple[int, ...]) -> None:
    """AdaFace's IR: the 64 -> 64 stride-2 first block subsamples by MaxPool2d(1, 2), no conv + BN; the
    output BN1d has no affine parameters. 475 vs 467 and 925 vs 917 state-dict entries (issue 14)."""
    model = build_backbone(name)
    assert parameter_count(model) == iresnet_params(layers) - conv(64, 64, 1) - bn(64) - bn(512)
    first = model.body.stage1[0].shortcut
    assert isinstance(first, torch.nn.MaxPool2d) and (first.kernel_size, first.stride) == (1, 2)
    assert not model.head[-1].affine and model.head[1].p == 0.4
    iresnet = build_backbone(name.replace("adaface_ir101", "iresnet100").replace("adaface_ir", "iresnet"))
    assert len(iresnet.state_dict()) - len(model.state_dict()) == 8


def test_adaface_max_pool_shortcut_subsamples() -> None:
    model = build_backbone("adaface_ir18", input_size=32).eval()
    x = torch.randn(1, 64, 8, 8)
    torch.testing.assert_close(model.body.stage1[0].shortcut(x), x[:, :, ::2, ::2])


def dlib_resnet_params() -> int:
    """dlib's anet_type: conv7x7 (bias) + affine stem; blocks of two conv3x3 (bias) + affine; fc 256->128 without bias."""

    def block(c_in: int, c_out: int) -> int:
        return conv(c_in, c_out, 3) + c_out + bn(c_out) + conv(c_out, c_out, 3) + c_out + bn(c_out)

    total = conv(3, 32, 7) + 32 + bn(32) + 3 * block(32, 32)
    for c_in, c_out, blocks in ((32, 64, 4), (64, 128, 3), (128, 256, 3), (256, 256, 1)):
        total += block(c_in, c_out) + (blocks - 1) * block(c_out, c_out)
    return total + 256 * 128


def test_dlib_resnet_architecture() -> None:
    model = build_backbone("dlib_resnet").eval()
    assert parameter_count(model) == dlib_resnet_params()
    assert model.input_size == (150, 150) and model.embedding_size == 128
    assert model.feature_channels == 256 and model.feature_map_size == (2, 2)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 29  # "a ResNet network with 29 conv layers" (dlib-models README)
    with torch.no_grad():
        output = model(images((150, 150)), return_feature_map=True)
    assert output.embedding.shape == (2, 128) and output.feature_map.shape == (2, 256, 2, 2)


def test_dlib_resnet_input_sizes() -> None:
    assert build_backbone("dlib_resnet", input_size=103).feature_map_size == (1, 1)
    with pytest.raises(ValueError, match="too small.*103"):
        build_backbone("dlib_resnet", input_size=102)
    model = build_backbone("dlib_resnet", input_size=(160, 200)).train()
    output = model(images((160, 200)), return_feature_map=True)
    output.feature_map.retain_grad()
    (output.embedding * torch.randn_like(output.embedding)).sum().backward()
    assert output.feature_map.grad is not None and output.feature_map.grad.abs().sum() > 0


def test_padded_add_zero_pads_channels_and_borders_as_dlib_add_prev() -> None:
    from lrfr.models.dlib_resnet import padded_add

    a = torch.arange(2 * 3 * 3, dtype=torch.float32).reshape(1, 2, 3, 3)
    b = torch.ones(1, 1, 4, 4)
    total = padded_add(a, b)
    assert total.shape == (1, 2, 4, 4)
    expected = torch.zeros(1, 2, 4, 4)
    expected[:, :, :3, :3] = a
    expected[:, :1] += 1
    torch.testing.assert_close(total, expected)

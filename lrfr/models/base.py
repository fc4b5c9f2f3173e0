"""The common backbone interface: images -> last spatial feature map -> embedding.

Every backbone is a ``body`` (the convolutional stages, ending at the last spatial feature map) and
a ``head`` sized from that map for the ``input_size`` the model is built for. The feature map is
what the Recognizability paper's regression/attention modules and Grad-CAM consume.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Iterable, NamedTuple

import torch
from torch import Tensor, nn

from lrfr.models.modes import eval_mode
from lrfr.registry import Registry

Size = tuple[int, int]
HeadFactory = Callable[[int, Size, int], nn.Module]
"""``(feature_channels, feature_map_size, embedding_size) -> head``."""


class BackboneOutput(NamedTuple):
    embedding: Tensor
    feature_map: Tensor


def as_size(size: int | Size) -> Size:
    """``112 -> (112, 112)``; a pair is checked to hold two positive integers."""
    pair = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    if len(pair) != 2 or not all(isinstance(n, int) and n > 0 for n in pair):
        raise ValueError(f"input_size must be a positive int or an (H, W) pair, got {size!r}")
    return pair


def conv_bn(
    in_channels: int,
    out_channels: int,
    kernel_size: int | Size,
    *,
    stride: int = 1,
    padding: int | Size | None = None,
    groups: int = 1,
    activation: nn.Module | None = None,
) -> nn.Sequential:
    """Bias-free conv -> BatchNorm2d (-> activation); 'same' padding for odd kernels by default.

    With a PReLU this is insightface's ``ConvBlock``, without an activation its ``LinearBlock``.
    """
    if padding is None:
        kernel = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        padding = (kernel[0] // 2, kernel[1] // 2)
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if activation is not None:
        layers.append(activation)
    return nn.Sequential(*layers)


def shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity, or a 1x1 conv + BN projection where a residual block changes shape."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return conv_bn(in_channels, out_channels, 1, stride=stride)


def residual_stage(
    block: Callable[[int, int, int], nn.Module], in_channels: int, out_channels: int, blocks: int, stride: int
) -> nn.Sequential:
    """``blocks`` residual blocks ``block(in, out, stride)``; the first changes width and strides."""
    return nn.Sequential(
        block(in_channels, out_channels, stride),
        *(block(out_channels, out_channels, 1) for _ in range(blocks - 1)),
    )


def staged_body(stem: nn.Module, stages: Iterable[nn.Module]) -> nn.Sequential:
    """``stem`` then ``stage1``, ``stage2``, ... as one named Sequential."""
    named_stages = ((f"stage{i}", stage) for i, stage in enumerate(stages, 1))
    return nn.Sequential(OrderedDict([("stem", stem), *named_stages]))


class FlattenHead(nn.Sequential):
    """BN2d -> Dropout -> flatten -> Linear -> BN1d: the IResNet head (insightface arcface_torch).

    With ``freeze_output_scale`` the BN1d's affine weight is fixed to 1, as insightface's ``features``;
    with ``affine_output=False`` the BN1d has no affine parameters at all, as AdaFace's output layer.
    """

    def __init__(
        self,
        channels: int,
        map_size: Size,
        embedding_size: int,
        *,
        dropout: float = 0.0,
        freeze_output_scale: bool = False,
        affine_output: bool = True,
    ) -> None:
        output_norm = nn.BatchNorm1d(embedding_size, affine=affine_output)
        if affine_output:
            output_norm.weight.requires_grad_(not freeze_output_scale)
        super().__init__(
            nn.BatchNorm2d(channels),
            nn.Dropout(dropout),
            nn.Flatten(),
            nn.Linear(channels * map_size[0] * map_size[1], embedding_size),
            output_norm,
        )


def kaiming_init(model: nn.Module) -> None:
    """He-normal (fan_out, ReLU gain) convs and linears with zero bias; BatchNorm to identity."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class Backbone(nn.Module):
    """A face-recognition backbone: ``body`` (conv stages) then a ``head`` sized for ``input_size``.

    ``total_stride`` is the body's downsampling factor; smaller inputs are rejected because the last
    stride-2 stages would only see 1x1 maps.
    """

    embedding_size: int
    input_size: Size
    feature_channels: int
    feature_map_size: Size

    def __init__(
        self,
        body: nn.Module,
        head: HeadFactory,
        *,
        input_size: int | Size,
        embedding_size: int,
        total_stride: int,
    ) -> None:
        super().__init__()
        self.input_size = as_size(input_size)
        if not isinstance(embedding_size, int) or embedding_size <= 0:
            raise ValueError(f"embedding_size must be a positive int, got {embedding_size!r}")
        if min(self.input_size) < total_stride:
            raise ValueError(
                f"input_size={self.input_size} is too small for {type(self).__name__}: "
                f"its total stride is {total_stride}, so both sides must be >= {total_stride}"
            )
        self.embedding_size = embedding_size
        self.body = body
        self.feature_channels, self.feature_map_size = self._probe_feature_map()
        self.head = head(self.feature_channels, self.feature_map_size, embedding_size)

    @torch.no_grad()
    def _probe_feature_map(self) -> tuple[int, Size]:
        """Channels and spatial size of the last feature map, from a dry run on zeros (eval mode)."""
        with eval_mode(self.body):
            probe = self.body(torch.zeros(1, 3, *self.input_size))
        return probe.shape[1], (probe.shape[2], probe.shape[3])

    def features(self, images: Tensor) -> Tensor:
        """The last spatial feature map ``(B, feature_channels, h, w)``, before the head."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        return self.body(images)

    def embed(self, feature_map: Tensor) -> Tensor:
        """The head: feature map -> unnormalised ``(B, embedding_size)`` embedding."""
        return self.head(feature_map)

    def forward(self, images: Tensor, return_feature_map: bool = False) -> Tensor | BackboneOutput:
        feature_map = self.features(images)
        if tuple(feature_map.shape[2:]) != self.feature_map_size:
            got = tuple(images.shape[2:])
            raise ValueError(
                f"{type(self).__name__} got input size {got} but was built for input size "
                f"{self.input_size} (its head expects a {self.feature_map_size} feature map, "
                f"got {tuple(feature_map.shape[2:])}); build it with input_size={got}"
            )
        embedding = self.embed(feature_map)
        return BackboneOutput(embedding, feature_map) if return_feature_map else embedding


BACKBONES: Registry[Backbone] = Registry("backbone")

"""The two auxiliary modules of Chai et al. 2023 (CVPR), both reading the backbone's last feature map.

- :class:`PerceptibilityRegression` (Sec. 3.2, Fig. 2): flattened feature map -> dropout -> one fully
  connected layer -> the learned recognizability index (RI) ``xi_hat``, a quality score that needs no
  UI center at test time.
- :class:`PerceptibilityAttention` (Sec. 3.4): CBAM attention (Woo et al. 2018), channel then
  spatial, on the feature map, then one fully connected layer to the attended embedding ``v_attn``.

Their losses are in :mod:`lrfr.losses.recognizability_index`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from lrfr.models.base import Size, as_size


class PerceptibilityRegression(nn.Sequential):
    """Flatten -> Dropout -> Linear(C*h*w, 1): the learned RI ``xi_hat`` (B,) of a (B, C, h, w) map.

    The order is the paper's ("a flattened feature map ... navigating through a dropout layer and a
    fully-connected regression layer"). ``dropout``: the paper gives no rate; 0.4 is the rate of the
    flatten head of this library's ResNet (``lrfr.models.resnet``): the same kind of single wide linear
    layer on the same flattened last feature map, here with C*h*w inputs (25,088 for a 512x7x7 map)
    and one output fitted on small VLR training sets, so prone to over-fitting without it.
    """

    def __init__(self, feature_channels: int, feature_map_size: int | Size, dropout: float = 0.4) -> None:
        height, width = as_size(feature_map_size)
        super().__init__(nn.Flatten(), nn.Dropout(dropout), nn.Linear(feature_channels * height * width, 1))

    def forward(self, feature_map: Tensor) -> Tensor:
        return super().forward(feature_map).squeeze(1)


class AttentionOutput(NamedTuple):
    """The attended embedding (B, D) and the CBAM maps: channel (B, C) and spatial (B, h, w), in [0, 1]."""

    attended: Tensor
    channel: Tensor
    spatial: Tensor


class PerceptibilityAttention(nn.Module):
    """CBAM channel attention, then spatial attention, then flatten -> Linear to ``embedding_size``.

    With F the (B, C, h, w) feature map (Woo et al. 2018, Eq. 1-3; "sequentially" in Chai et al.):
    ``M_c = sigmoid(MLP(avgpool F) + MLP(maxpool F))``, one MLP ``C -> C/r -> ReLU -> C`` shared by
    both pooled vectors; ``F' = M_c * F``; ``M_s = sigmoid(conv_kxk([mean_c F'; max_c F']))``;
    ``F'' = M_s * F'``; ``v_attn = Linear(flatten F'')``. The MLP and the conv have no bias, as in
    CBAM's equations (a bias would be counted twice in ``MLP(avg) + MLP(max)``). ``reduction``
    r = 16 and ``spatial_kernel`` k = 7 are CBAM's defaults (Chai et al. give none); the hidden width
    is at least 1.
    """

    def __init__(
        self,
        feature_channels: int,
        feature_map_size: int | Size,
        embedding_size: int,
        reduction: int = 16,
        spatial_kernel: int = 7,
    ) -> None:
        super().__init__()
        if spatial_kernel < 1 or spatial_kernel % 2 == 0:
            raise ValueError(f"spatial_kernel must be a positive odd int, got {spatial_kernel}")
        if reduction < 1:
            raise ValueError(f"reduction must be a positive int, got {reduction}")
        height, width = as_size(feature_map_size)
        hidden = max(feature_channels // reduction, 1)
        self.channel_mlp = nn.Sequential(
            nn.Linear(feature_channels, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, feature_channels, bias=False)
        )
        self.spatial_conv = nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2, bias=False)
        self.fc = nn.Linear(feature_channels * height * width, embedding_size)

    def forward(self, feature_map: Tensor, return_maps: bool = False) -> Tensor | AttentionOutput:
        channel = torch.sigmoid(self.channel_mlp(feature_map.mean((2, 3))) + self.channel_mlp(feature_map.amax((2, 3))))
        refined = feature_map * channel[:, :, None, None]
        pooled = torch.stack([refined.mean(1), refined.amax(1)], dim=1)
        spatial = torch.sigmoid(self.spatial_conv(pooled))[:, 0]
        attended = self.fc((refined * spatial[:, None]).flatten(1))
        return AttentionOutput(attended, channel, spatial) if return_maps else attended

"""Image fidelity of super-resolved faces: PSNR and SSIM per image, on images in [-1, 1].

Both are computed on the pixel range [0, 1] (``(x + 1) / 2``, clipped), on RGB by default or on the
luma Y of ITU-R BT.601 (``y_channel=True``: Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255, as
MATLAB's ``rgb2ycbcr``, the channel the SR papers score).

* PSNR = 10 log10(1 / MSE) dB (MSE over the image's pixels and channels).
* SSIM (Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 2004, Eq. 13): local means, variances and covariance
  under an 11x11 Gaussian window (sigma 1.5), ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` with L = 1, the map
  averaged over the positions where the window fits (no padding), then over channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03
BT601 = (65.481, 128.553, 24.966)


def unit_range(images: Tensor, y_channel: bool = False) -> Tensor:
    """(B, 3, H, W) [-1, 1] images -> (B, C, H, W) float64 in [0, 1]; C = 1 (luma Y) with ``y_channel``."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
    unit = images.detach().double().add(1).div(2).clamp(0, 1)
    if not y_channel:
        return unit
    weights = torch.tensor(BT601, dtype=unit.dtype, device=unit.device).view(1, 3, 1, 1)
    return (16 + (unit * weights).sum(1, keepdim=True)) / 255


def _pair(restored: Tensor, target: Tensor, y_channel: bool) -> tuple[Tensor, Tensor]:
    if restored.shape != target.shape:
        raise ValueError(f"restored images have shape {tuple(restored.shape)} but the targets {tuple(target.shape)}")
    return unit_range(restored, y_channel), unit_range(target, y_channel)


def psnr(restored: Tensor, target: Tensor, y_channel: bool = False) -> Tensor:
    """(B,) PSNR in dB of each restored image against its target (inf where they are equal)."""
    a, b = _pair(restored, target, y_channel)
    mse = (a - b).square().flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse)).float()


def gaussian_line(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> Tensor:
    """(size,) float64 normalised 1-D Gaussian."""
    axis = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    line = torch.exp(-axis.square() / (2 * sigma**2))
    return line / line.sum()


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> Tensor:
    """(size, size) float64 normalised Gaussian: the outer product of :func:`gaussian_line` with itself."""
    line = gaussian_line(size, sigma)
    return line[:, None] * line[None, :]


def ssim(restored: Tensor, target: Tensor, y_channel: bool = False) -> Tensor:
    """(B,) mean SSIM of each restored image against its target; images must be >= 11 px a side."""
    a, b = _pair(restored, target, y_channel)
    if min(a.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW} px a side, got {tuple(a.shape[-2:])}")
    line = gaussian_line().to(a.device)

    def local(x: Tensor) -> Tensor:
        """The Gaussian-weighted local mean, as two 1-D passes (the window is separable; ~5x faster)."""
        planes = x.reshape(-1, 1, *x.shape[-2:])
        planes = F.conv2d(F.conv2d(planes, line.view(1, 1, -1, 1)), line.view(1, 1, 1, -1))
        return planes.reshape(*x.shape[:2], *planes.shape[-2:])

    mu_a, mu_b = local(a), local(b)
    var_a = local(a * a) - mu_a.square()
    var_b = local(b * b) - mu_b.square()
    covariance = local(a * b) - mu_a * mu_b
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    index = ((2 * mu_a * mu_b + c1) * (2 * covariance + c2)) / ((mu_a.square() + mu_b.square() + c1) * (var_a + var_b + c2))
    return index.flatten(1).mean(1).float()

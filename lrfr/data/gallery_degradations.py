"""Gallery degradations of Grm et al. (2023), Sec. 3.2: Table 1's eleven functions, their chains (Eq. 1)
and resolution matching (RM).

Every function maps lrfr images, a float ``(N, 3, H, W)`` tensor in [-1, 1], to the same shape, drawing
its randomness from a ``torch.Generator`` (one draw per image), so a hypothesis is reproducible from its
seed. Pixel-domain parameters of Table 1 are applied in [0, 1] units (as skimage's ``random_noise``
reads "variance 0.02") and in pixels of the image the function is given.

Choices where Table 1 gives no number (written here, where the code is):

* colour jitter: hue rotated by ``U(-0.1, 0.1)`` of a turn in the YIQ chroma plane (a linear
  approximation of an HSV hue shift that keeps luma), saturation scaled by ``U(0.5, 1.5)``;
* brightness jitter: brightness and contrast factors ``U(0.6, 1.4)`` (torchvision's semantics:
  ``x * b``, then blended with its mean grey by ``c``);
* motion blur: a horizontal box of 20 pixels (10 left, 9 right of the pixel), edges replicated;
* Gaussian blur: sigma 1.1, 5 x 5 window; disk blur: the pixels within radius 5, averaged;
* perspective: each corner moved by up to 20 % of the half side in x and y (torchvision's ``distortion_scale`` 0.2);
* shear: horizontal shear of ``U(-15, 15)`` degrees about the centre;
* upscale following downscale: bicubic to half the side and back (:func:`lrfr.data.degrade.resize`);
* patch shuffle (Kang et al. 2017): the four pixels of every non-overlapping 2 x 2 patch permuted at
  random (a remainder row/column is left as is).

Eq. 1: a chain ``<rho_1, rho_2, rho_3>`` is ``rho_3(down(rho_2(down(rho_1(G)))))`` with ``down`` the bicubic
x2 down-sampling; every chain of length 1-3 over the eleven functions with repetition is a path of
Fig. 2's graph (11 + 11^2 + 11^3 = 1463). RM resizes a degraded hypothesis to the size of the probe
(hypothesis) it is compared with.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lrfr.data.degrade import resize

Degradation = Callable[[Tensor, torch.Generator], Tensor]
MAX_CHAIN = 3  # Sec. 3.2: "We set the maximum length of the combinations to three"
NOISE_VARIANCE = 0.02  # Table 1: additive and speckle noise
MOTION_WINDOW = 20  # Table 1: horizontal motion blur, window 20
GAUSSIAN_SIGMA, GAUSSIAN_WINDOW = 1.1, 5  # Table 1
DISK_RADIUS = 5  # Table 1
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _unit(images: Tensor) -> Tensor:
    return (images + 1) / 2


def _signed(unit: Tensor) -> Tensor:
    return (unit.clamp(0, 1) * 2 - 1).contiguous()


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _check(images: Tensor) -> None:
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
        got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images are {got}; expected a float (N, 3, H, W) tensor in [-1, 1]")


def filter2d(images: Tensor, kernel: Tensor) -> Tensor:
    """``images`` convolved channel-wise with the 2-D ``kernel`` (k_h, k_w), edges replicated, same size."""
    k_h, k_w = kernel.shape
    padded = F.pad(images, (k_w // 2, (k_w - 1) // 2, k_h // 2, (k_h - 1) // 2), mode="replicate")
    weight = kernel.to(images)[None, None].expand(images.shape[1], 1, k_h, k_w)
    return F.conv2d(padded, weight, groups=images.shape[1])


def gaussian_kernel(sigma: float, window: int | None = None) -> Tensor:
    """The normalised (window x window) Gaussian of ``sigma`` (default window ``2 ceil(3 sigma) + 1``);
    sigma 0 is the identity (a 1 x 1 kernel)."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}")
    if sigma == 0:
        return torch.ones(1, 1)
    window = window or 2 * math.ceil(3 * sigma) + 1
    x = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    line = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = line[:, None] * line[None, :]
    return (kernel / kernel.sum()).float()


def disk_kernel(radius: int) -> Tensor:
    """The pixels within ``radius`` of the centre, each weighted equally (sum 1)."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    disk = ((x[:, None] ** 2 + x[None, :] ** 2) <= radius**2).float()
    return disk / disk.sum()


def gaussian_noise(images: Tensor, generator: torch.Generator) -> Tensor:
    """Additive Gaussian noise, mean 0, variance 0.02 (in [0, 1] units)."""
    noise = torch.randn(images.shape, generator=generator) * math.sqrt(NOISE_VARIANCE)
    return _signed(_unit(images) + noise.to(images))


def speckle_noise(images: Tensor, generator: torch.Generator) -> Tensor:
    """Multiplicative noise ``u + u * n``, n ~ N(0, 0.02) (in [0, 1] units)."""
    noise = torch.randn(images.shape, generator=generator) * math.sqrt(NOISE_VARIANCE)
    unit = _unit(images)
    return _signed(unit + unit * noise.to(images))


def color_jitter(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random hue rotation (+-0.1 turn) and saturation (x 0.5-1.5) in the YIQ chroma plane; luma kept."""
    n = images.shape[0]
    angle = _uniform(n, -0.1, 0.1, generator) * 2 * math.pi
    saturation = _uniform(n, 0.5, 1.5, generator)
    yiq = torch.einsum("ij,njhw->nihw", _YIQ.to(images), _unit(images))
    cos, sin = (torch.cos(angle) * saturation).to(images), (torch.sin(angle) * saturation).to(images)
    i, q = yiq[:, 1], yiq[:, 2]
    rotated = torch.stack([yiq[:, 0], cos[:, None, None] * i - sin[:, None, None] * q,
                           sin[:, None, None] * i + cos[:, None, None] * q], dim=1)
    return _signed(torch.einsum("ij,njhw->nihw", torch.linalg.inv(_YIQ).to(images), rotated))


def brightness_jitter(images: Tensor, generator: torch.Generator) -> Tensor:
    """Brightness factor b and contrast factor c, each U(0.6, 1.4): ``c * (b u) + (1 - c) * mean(b u)``."""
    n = images.shape[0]
    b = _uniform(n, 0.6, 1.4, generator).to(images)[:, None, None, None]
    c = _uniform(n, 0.6, 1.4, generator).to(images)[:, None, None, None]
    bright = (_unit(images) * b).clamp(0, 1)
    grey = torch.einsum("i,nihw->nhw", _YIQ[0].to(images), bright).mean(dim=(1, 2))[:, None, None, None]
    return _signed(c * bright + (1 - c) * grey)


def motion_blur(images: Tensor, generator: torch.Generator) -> Tensor:
    """Horizontal motion blur over a window of 20 pixels."""
    return filter2d(images, torch.full((1, MOTION_WINDOW), 1 / MOTION_WINDOW))


def gaussian_blur(images: Tensor, generator: torch.Generator) -> Tensor:
    """Gaussian blur, sigma 1.1, window 5."""
    return filter2d(images, gaussian_kernel(GAUSSIAN_SIGMA, GAUSSIAN_WINDOW))


def disk_blur(images: Tensor, generator: torch.Generator) -> Tensor:
    """Disk (pill-box) blur of radius 5."""
    return filter2d(images, disk_kernel(DISK_RADIUS))


def grid_sample(images: Tensor, grid: Tensor) -> Tensor:
    """Bilinear sampling at normalised ``grid`` (N, H, W, 2) points, borders replicated."""
    return F.grid_sample(images, grid.to(images), mode="bilinear", padding_mode="border", align_corners=False)


def _base_grid(n: int, height: int, width: int) -> Tensor:
    ys = (torch.arange(height) + 0.5) / height * 2 - 1
    xs = (torch.arange(width) + 0.5) / width * 2 - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).expand(n, height, width, 2)


def homography(source: Tensor, target: Tensor) -> Tensor:
    """The (N, 3, 3) homographies mapping the 4 ``source`` points (N, 4, 2) onto ``target`` (N, 4, 2)."""
    n = source.shape[0]
    rows = []
    for k in range(4):
        x, y = source[:, k, 0], source[:, k, 1]
        u, v = target[:, k, 0], target[:, k, 1]
        one, zero = torch.ones_like(x), torch.zeros_like(x)
        rows.append(torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], dim=1))
        rows.append(torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], dim=1))
    a = torch.stack(rows, dim=1).double()
    b = target.reshape(n, 8).double()
    h = torch.linalg.solve(a, b)
    return torch.cat([h, torch.ones(n, 1, dtype=h.dtype)], dim=1).reshape(n, 3, 3).float()


def perspective(images: Tensor, generator: torch.Generator, distortion: float = 0.2) -> Tensor:
    """Random perspective: each corner moved inwards/outwards by up to ``distortion`` of the half side."""
    n, _, height, width = images.shape
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]).expand(n, 4, 2)
    moved = corners + (torch.rand(n, 4, 2, generator=generator) * 2 - 1) * distortion
    # the output pixel at an image corner samples the moved corner: output -> input homography
    h = homography(corners, moved)
    grid = _base_grid(n, height, width)
    points = torch.cat([grid, torch.ones(n, height, width, 1)], dim=-1) @ h.transpose(1, 2)[:, None]
    return grid_sample(images, points[..., :2] / points[..., 2:])


def shear(images: Tensor, generator: torch.Generator, max_degrees: float = 15.0) -> Tensor:
    """Random horizontal shear ``x' = x + tan(a) y`` about the centre, ``a ~ U(-15, 15)`` degrees."""
    n, _, height, width = images.shape
    slope = torch.tan(torch.deg2rad(_uniform(n, -max_degrees, max_degrees, generator)))
    grid = _base_grid(n, height, width).clone()
    grid[..., 0] = grid[..., 0] + slope[:, None, None] * grid[..., 1] * height / width
    return grid_sample(images, grid)


def down_up(images: Tensor, generator: torch.Generator) -> Tensor:
    """Bicubic down-scaling to half the side, then back up to the original size."""
    height, width = images.shape[-2:]
    return resize(resize(images, (max(1, height // 2), max(1, width // 2))), (height, width))


def patch_shuffle(images: Tensor, generator: torch.Generator, patch: int = 2) -> Tensor:
    """PatchShuffle (Kang et al. 2017): the pixels of each non-overlapping ``patch`` x ``patch`` window permuted
    at random (one permutation per window, shared by the channels)."""
    n, c, height, width = images.shape
    rows, cols = height // patch, width // patch
    out = images.clone()
    core = images[..., : rows * patch, : cols * patch].reshape(n, c, rows, patch, cols, patch)
    pixels = core.permute(0, 1, 2, 4, 3, 5).reshape(n, c, rows, cols, patch * patch)
    order = torch.rand(n, 1, rows, cols, patch * patch, generator=generator).argsort(dim=-1).expand_as(pixels)
    shuffled = pixels.gather(-1, order).reshape(n, c, rows, cols, patch, patch).permute(0, 1, 2, 4, 3, 5)
    out[..., : rows * patch, : cols * patch] = shuffled.reshape(n, c, rows * patch, cols * patch)
    return out


DEGRADATIONS: dict[str, Degradation] = {
    "gaussian_noise": gaussian_noise,
    "speckle_noise": speckle_noise,
    "color_jitter": color_jitter,
    "brightness_jitter": brightness_jitter,
    "motion_blur": motion_blur,
    "gaussian_blur": gaussian_blur,
    "disk_blur": disk_blur,
    "perspective": perspective,
    "shear": shear,
    "down_up": down_up,
    "patch_shuffle": patch_shuffle,
}
"""Table 1, in its order."""


def chains(names: Sequence[str] = tuple(DEGRADATIONS), max_length: int = MAX_CHAIN) -> list[tuple[str, ...]]:
    """Every chain (ordered, repetition allowed) of 1..``max_length`` of ``names``: Fig. 2's paths, shortest first."""
    unknown = sorted(set(names) - set(DEGRADATIONS))
    if unknown or max_length < 1:
        raise ValueError(f"chains: unknown degradations {unknown} or max_length {max_length!r} < 1; "
                         f"expected names from {list(DEGRADATIONS)}")
    return [chain for length in range(1, max_length + 1) for chain in itertools.product(names, repeat=length)]


def degrade(images: Tensor, chain: Sequence[str], generator: torch.Generator) -> Tensor:
    """Eq. 1: ``rho_k(down(... rho_2(down(rho_1(images)))))``, bicubic x2 down-sampling between steps.
    The empty chain returns ``images`` (the undegraded hypothesis)."""
    _check(images)
    for step, name in enumerate(chain):
        if name not in DEGRADATIONS:
            raise ValueError(f"unknown degradation {name!r}; expected one of {list(DEGRADATIONS)}")
        if step:
            height, width = images.shape[-2:]
            images = resize(images, (max(1, height // 2), max(1, width // 2)))
        images = DEGRADATIONS[name](images, generator)
    return images


def chain_size(size: tuple[int, int], length: int) -> tuple[int, int]:
    """The side after a chain of ``length`` steps (``length - 1`` halvings, Eq. 1)."""
    height, width = size
    for _ in range(max(0, length - 1)):
        height, width = max(1, height // 2), max(1, width // 2)
    return height, width


def matched_size(probe_size: tuple[int, int], scale: int) -> tuple[int, int]:
    """RM's target: the size of the probe hypothesis at magnification ``scale`` (probe side x scale)."""
    return probe_size[0] * scale, probe_size[1] * scale


def resolution_match(images: Tensor, probe_size: tuple[int, int], scale: int = 1) -> Tensor:
    """RM (Sec. 3.2, Fig. 2): gallery hypotheses bicubic-resized to the probe hypothesis size."""
    return resize(images, matched_size(probe_size, scale))

"""SynthFace camera chain: an HR render to a native low-resolution image (antialiased bicubic
down-sampling, defocus and motion blur, exposure and gamma, sensor noise, JPEG), and the TinyFace-like
distribution of native face heights."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from lrfr.data.degrade import resize
from lrfr.data.synthetic.draws import normal

# Ranges of the camera chain: Gaussian defocus sigma and motion length (output px), gamma, exposure,
# sensor noise (grey levels), JPEG quality.
# NATIVE_CHAIN is calibrated against Cheng et al. 2018, Table 4, where the same model scores on native LR
# (TinyFace) 0.82x (CentreFace) / 0.87x (VggFace) its rank-1 on synthetic LR (SynLR-MF2) and 0.70x / 0.86x
# its rank-20: with an HR-trained quick model (64-px input) and 20-px probes of the same faces against an HR
# gallery of 1,000 identities, these ranges give native/synthetic 0.80 (rank-1) and 0.85 (rank-20); the
# previous ranges (sigma 0.3-0.9, motion 0-1.6, gamma 0.75-1.4, exposure 0.55-1.1, noise 1.5-7, JPEG 35-85)
# gave 0.39 and 0.46, an order of magnitude harder than real native LR once heights spread below 20 px.
# Blur, exposure and noise drive the gap; JPEG quality alone moves it little. `lrfr bench calibration`
# measures the ratios (last line).
NATIVE_CHAIN = {"sigma": (0.2, 0.45), "motion": (0.0, 0.6), "gamma": (0.9, 1.12), "exposure": (0.8, 1.0),
                "noise": (0.5, 3.0), "quality": (70.0, 95.0)}
UI_CHAIN = {"sigma": (0.8, 1.8), "motion": (0.5, 3.0), "gamma": (1.0, 1.6), "exposure": (0.2, 0.8),
            "noise": (4.0, 12.0), "quality": (10.0, 35.0)}
HEIGHT_MEAN, HEIGHT_STD, HEIGHT_RANGE = 20.0, 6.5, (6, 32)


def heights_from_uniform(u: np.ndarray) -> np.ndarray:
    """TinyFace-like face heights: a normal (mean 20, sd 6.5) rounded and clipped to 6..32 px."""
    return np.clip(np.rint(HEIGHT_MEAN + HEIGHT_STD * normal(u)), *HEIGHT_RANGE).astype(np.int64)


def _blur_kernel(sigma: float, motion: float, angle: float) -> np.ndarray:
    """Normalised 2D kernel: a Gaussian smeared along a line of length ``motion`` at ``angle``."""
    radius = int(np.ceil(2.5 * sigma + motion / 2))
    axis = np.arange(-radius, radius + 1, dtype=np.float64)
    steps = np.linspace(-motion / 2, motion / 2, 7)
    dx = axis[None, None, :] - steps[:, None, None] * np.cos(angle)
    dy = axis[None, :, None] - steps[:, None, None] * np.sin(angle)
    kernel = np.exp(-(dx**2 + dy**2) / (2 * sigma**2)).sum(0)
    return kernel / kernel.sum()


def camera(image: np.ndarray, height: int, u: np.ndarray, chain: dict[str, tuple[float, float]]) -> np.ndarray:
    """One (H, W, 3) uint8 face through the camera chain to (height, height, 3) uint8.

    Antialiased bicubic down-sampling, defocus + motion blur, exposure and gamma, Gaussian sensor noise,
    JPEG; ``u`` holds the image's uniforms (8 + 3 height^2 of them) that pick each setting in ``chain``.
    """
    value = {k: lo + (hi - lo) * u[i] for i, (k, (lo, hi)) in enumerate(chain.items())}
    small = resize(image, height).astype(np.float64) / 255
    kernel = _blur_kernel(value["sigma"], value["motion"], np.pi * u[6])
    pad = kernel.shape[0] // 2
    padded = np.pad(small, ((pad, pad), (pad, pad), (0, 0)), mode="reflect" if pad < height else "edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape, axis=(0, 1))
    blurred = np.einsum("hwcij,ij->hwc", windows, kernel)
    exposed = np.clip(blurred * value["exposure"], 0, 1) ** value["gamma"]
    noise = normal(u[8:8 + 3 * height * height]).reshape(height, height, 3)
    noisy = np.clip(np.rint(exposed * 255 + value["noise"] * noise), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, format="JPEG", quality=int(value["quality"]))
    return np.asarray(Image.open(buffer).convert("RGB"))

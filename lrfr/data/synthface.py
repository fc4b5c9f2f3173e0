"""SynthFace: procedural, seeded, fast synthetic faces (identities x per-image conditions).

Every random value is a counter-based hash of (seed, stream, identity, image, field), so an image never
depends on the batch it was rendered in, and the same seed always gives the same bytes. Rendering is
vectorised over a batch with torch: soft-edged ellipses evaluated on coordinate grids and alpha-composited.

Layout (canonical frame, 112 x 112, face centred at x = 56): the coarse layers (background clutter,
clothes, hair, head, ears, beard) are drawn at 56 x 56 and upsampled; the fine features (eyes, brows,
glasses, nose, mouth, mole) are drawn at 112 x 112 inside fixed windows, mirrored about the face's axis so
that each left/right pair costs one evaluation, over the identity's relief shading. Lighting is applied in
the canonical frame, then one ``grid_sample`` applies pose (yaw/pitch as smooth horizontal/vertical feature
shifts, roll, scale) and crop misalignment; occluders are composited last.

Identity information lives mostly at mid/fine scales: feature geometry (sizes, spacings and tilts, a few to
about ten pixels at 112 px) and the relief shading (wavelengths 8-16 px). Coarse cues (skin tone, hair colour
and style, head shape) are shared by population groups of identities (GROUP_OPTIONS) and perturbed per image
(gain, white balance, hats, restyled hair), so that identities are not separable at 8 px.
``lrfr.data.calibration`` measures the resulting accuracy-versus-resolution curve.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.special import ndtri
from tqdm.auto import tqdm

HR_SIZE = 112
COARSE = 56
CENTRE = 56.0

SKIN = np.array([[232, 196, 168], [214, 168, 130], [184, 136, 100], [140, 98, 70], [100, 70, 52]]) / 255
HAIR = np.array([[28, 22, 20], [70, 48, 32], [130, 92, 56], [196, 164, 110], [130, 126, 122]]) / 255
IRIS = np.array([[50, 32, 22], [96, 66, 40], [70, 96, 60], [70, 100, 140]]) / 255
SCENE = np.array([[120, 130, 140], [90, 110, 80], [170, 160, 140], [60, 60, 70], [150, 120, 100],
                  [200, 200, 205], [80, 90, 120], [110, 80, 70]]) / 255

# (stream tags of the hash) ------------------------------------------------------------------------
_IDENTITY, _SIMILAR, _CONDITION, _HEIGHT, _UI, _RELIEF = 1, 2, 3, 4, 5, 6
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, element-wise on uint64."""
    z = values.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = (z + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
    return z ^ (z >> np.uint64(31))


def uniforms(seed: int, stream: int, first: Sequence[int] | np.ndarray, second: Sequence[int] | np.ndarray | int,
             count: int) -> np.ndarray:
    """(N, count) float64 uniforms in [0, 1), a pure function of (seed, stream, first[n], second[n], column)."""
    first = np.asarray(first, dtype=np.int64).astype(np.uint64)
    second = np.broadcast_to(np.asarray(second, dtype=np.int64).astype(np.uint64), first.shape)
    with np.errstate(over="ignore"):
        key = _mix(_mix(_mix(np.full(first.shape, seed, np.uint64) ^ np.uint64(stream << 56)) + first) + second)
        bits = _mix(key[:, None] + np.arange(count, dtype=np.uint64)[None, :] * np.uint64(0x632BE59BD9B4E019))
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _normal(u: np.ndarray) -> np.ndarray:
    """Standard normal from uniforms (clipped to +-4 sigma)."""
    return ndtri(np.clip(u, 3e-5, 1 - 3e-5))


# ----------------------------------------------------------------------------------- identities
# Continuous identity parameters: name -> (low, high) in canonical 112-px units (radians for angles).
FINE = {
    "eye_y": (49.0, 60.0), "eye_dx": (8.5, 19.5), "eye_w": (4.0, 9.0), "eye_h": (2.0, 4.2),
    "eye_tilt": (-0.33, 0.33), "brow_gap": (4.5, 11.0), "brow_w": (4.5, 10.5), "brow_thick": (1.2, 3.6),
    "brow_tilt": (-0.5, 0.5), "brow_arch": (-0.05, 0.08), "nose_len": (7.0, 20.0), "nose_w": (2.5, 9.0),
    "mouth_gap": (5.0, 15.0), "mouth_w": (5.0, 14.0), "lip_thick": (1.4, 4.0), "lip_curve": (-0.045, 0.045),
    "hairline": (-27.0, -23.0), "head_w": (29.0, 31.0), "head_h": (37.0, 39.0), "jaw": (0.16, 0.39),
    "mole_x": (-16.0, 16.0), "mole_y": (66.0, 94.0), "glasses_r": (7.0, 9.5),
}
# Categorical identity parameters: name -> number of choices (small palettes: shared coarse cues).
CATEGORICAL = {"skin": len(SKIN), "hair_colour": len(HAIR), "hair_style": 4, "iris": len(IRIS)}
# Optional attributes: name -> probability of being present.
OPTIONAL = {"glasses": 0.15, "beard": 0.1, "mole": 0.3}
# Coarse cues that survive down-sampling are shared by a population group rather than owned by an identity:
# an identity's group is its skin tone (one group per SKIN entry), and each further attribute here is picked
# among its group's own few options (attribute -> options per group). So at 8 px a face narrows its identity
# down to a group and little more, as on real faces.
GROUP_OPTIONS = {"hair_colour": 1, "hair_style": 1}
RESTYLE = 0.2  # fraction of images showing another hair style than the identity's own (haircut, tied hair)
_COLUMNS = len(FINE) + len(CATEGORICAL) + len(OPTIONAL)


@dataclass(frozen=True)
class IdentityParams:
    """Parameters of one identity: fine geometry (canonical px), palette indices, optional attributes.

    ``parent`` is the identity it was copied from (a "perceptually similar identity"), else -1.
    """

    index: int
    parent: int
    fine: dict[str, float]
    categorical: dict[str, int]
    optional: dict[str, bool]

    def vector(self) -> np.ndarray:
        """Fine parameters scaled to [0, 1] by their ranges (for distances in parameter space)."""
        return np.array([(self.fine[k] - lo) / (hi - lo) for k, (lo, hi) in FINE.items()])


def _raw_identities(seed: int, indices: np.ndarray) -> dict[str, np.ndarray]:
    """The own draw of every identity (before copying a parent)."""
    u = uniforms(seed, _IDENTITY, indices, 0, _COLUMNS)
    table: dict[str, np.ndarray] = {}
    for column, (name, (lo, hi)) in enumerate(FINE.items()):
        table[name] = lo + (hi - lo) * u[:, column]
    for offset, (name, choices) in enumerate(CATEGORICAL.items(), start=len(FINE)):
        table[name] = np.minimum((u[:, offset] * choices).astype(np.int64), choices - 1)
    group = table["skin"]
    for column, (name, options) in enumerate(GROUP_OPTIONS.items()):
        group_draws = uniforms(seed, _IDENTITY, group + (1 << 40), column, options)
        pick = np.minimum((table[name] * options) // CATEGORICAL[name], options - 1)
        table[name] = (group_draws[np.arange(len(group)), pick] * CATEGORICAL[name]).astype(np.int64)
    for offset, (name, probability) in enumerate(OPTIONAL.items(), start=len(FINE) + len(CATEGORICAL)):
        table[name] = u[:, offset] < probability
    return table


def _parents(seed: int, indices: np.ndarray, similar_fraction: float) -> np.ndarray:
    """The identity each index copies (-1 for none); parents are themselves never copies."""
    u = uniforms(seed, _SIMILAR, indices, 0, 2)
    is_copy = (u[:, 0] < similar_fraction) & (indices > 0)
    parent = np.where(is_copy, (u[:, 1] * indices).astype(np.int64), -1)
    for _ in range(64):  # walk down to an identity that is not a copy itself
        pending = parent >= 0
        if not pending.any():
            break
        flag = uniforms(seed, _SIMILAR, np.maximum(parent, 0), 0, 1)[:, 0] < similar_fraction
        step = pending & flag & (parent > 0)
        if not step.any():
            break
        parent = np.where(step, parent - 1, parent)
    return parent


def identity_table(seed: int, indices: Sequence[int], similar_fraction: float) -> dict[str, np.ndarray]:
    """Vectorised identity parameters of ``indices`` (a dict of (N,) arrays, plus ``parent``)."""
    indices = np.asarray(indices, dtype=np.int64)
    parent = _parents(seed, indices, similar_fraction)
    own = _raw_identities(seed, indices)
    base = _raw_identities(seed, np.where(parent >= 0, parent, indices))
    jitter = _normal(uniforms(seed, _SIMILAR, indices, 1, len(FINE)))
    table = {name: np.where(parent >= 0, base[name], own[name]) for name in own}
    for column, (name, (lo, hi)) in enumerate(FINE.items()):
        table[name] = np.where(parent >= 0, np.clip(table[name] + 0.06 * (hi - lo) * jitter[:, column], lo, hi),
                               table[name])
    table["parent"] = parent
    table["relief"] = _relief(seed, indices, parent)
    return table


# Identity relief: the shading of an identity's own facial shape (eye sockets, cheekbones, folds) as a sum of
# plane waves whose wavelengths (canonical px) lie in RELIEF_BAND; RELIEF_AMPLITUDE is its contrast. The band
# is where the calibration puts identity: it survives bicubic down-sampling to 24 px (Nyquist wavelength
# 9.3 canonical px) and is gone at 14 px (16 px). Band and amplitude were chosen by `lrfr bench calibration`
# (see lrfr.data.calibration; with 600 training identities x 10 images, 20 epochs): without the relief, HR
# rank-1 was 19.0 % and 14 px kept 14 % of it; with it, 25.9 % and 7 %.
RELIEF_WAVES, RELIEF_BAND, RELIEF_AMPLITUDE = 16, (8.0, 16.0), 0.25
RELIEF_WINDOW = (56.0, 68.0, 24.0, 30.0)  # centre x, centre y, semi-axes of the face region it shades


def _relief(seed: int, indices: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """(N, RELIEF_WAVES, 4) waves (wave number x, wave number y, phase, weight) of each identity; a copy
    of another identity takes its parent's waves with jittered phases."""
    own = np.where(parent >= 0, parent, indices)
    u = uniforms(seed, _RELIEF, own, 0, 4 * RELIEF_WAVES).reshape(len(indices), RELIEF_WAVES, 4)
    low, high = RELIEF_BAND
    wavelength = low * (high / low) ** u[..., 0]
    angle = np.pi * u[..., 1]
    jitter = _normal(uniforms(seed, _RELIEF, indices, 1, RELIEF_WAVES)) * 0.6 * (parent >= 0)[:, None]
    phase = 2 * np.pi * u[..., 2] + jitter
    weight = 0.5 + u[..., 3]
    weight = weight / np.sqrt((weight**2).sum(1, keepdims=True) / 2)
    k = 2 * np.pi / wavelength
    return np.stack([k * np.cos(angle), k * np.sin(angle), phase, weight], axis=-1)


# ----------------------------------------------------------------------------------- conditions
def condition_table(seed: int, identities: np.ndarray, images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image nuisance of image ``images[n]`` of identity ``identities[n]``."""
    u = uniforms(seed, _CONDITION, identities, images, 52)
    z = _normal(u)
    return {
        "yaw": np.clip(0.1 * z[:, 0], -0.35, 0.35), "pitch": np.clip(0.08 * z[:, 1], -0.2, 0.2),
        "roll": 0.06 * z[:, 2], "scale": 1.0 + 0.04 * z[:, 3], "shift_x": 2.0 * z[:, 4], "shift_y": 2.0 * z[:, 5],
        "smile": u[:, 6], "mouth_open": np.where(u[:, 7] < 0.3, u[:, 8], 0.0), "eye_open": 0.75 + 0.35 * u[:, 9],
        "brow_raise": 0.8 * z[:, 10],
        "light_angle": 2 * np.pi * u[:, 11], "light_strength": 0.45 * u[:, 12], "gain": 0.6 + 0.7 * u[:, 13],
        "tint": 1.0 + 0.03 * z[:, 14:17] + 0.07 * z[:, 40:41] * np.array([1.0, 0.0, -1.0]),
        "skin_jitter": 0.12 * z[:, 17:18] + 0.02 * z[:, 44:47],
        "hair_jitter": 0.25 * z[:, 20:21] + 0.05 * z[:, 48:51], "hairline_jitter": 1.5 * z[:, 41],
        "glasses_off": u[:, 42] < 0.5, "shaved": u[:, 51] < 0.4, "hat": u[:, 43] < 0.15, "restyle": u[:, 47],
        "scene": (u[:, 23] * len(SCENE)).astype(np.int64), "scene_tilt": z[:, 24:26] * 0.25,
        "clutter": u[:, 26:35].reshape(-1, 3, 3),
        "clothes": u[:, 35:38],
        "occluded": u[:, 38] < 0.15, "occluder": uniforms(seed, _CONDITION, identities, images + (1 << 40), 7),
        "faceless": np.zeros(len(identities), dtype=bool),
    }


# ----------------------------------------------------------------------------------- rendering
def _t(values: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(values), dtype=torch.float32)


def _grid(size: int, step: float, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """Pixel-centre coordinates (canonical 112-px units) of pixels start..stop of a size-px axis."""
    return (torch.arange(start, size if stop is None else stop, dtype=torch.float32) + 0.5) * step


def _ellipse(x: torch.Tensor, y: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, a: torch.Tensor,
             b: torch.Tensor, soft: float = 1.0, cos: torch.Tensor | None = None,
             sin: torch.Tensor | None = None, bend: torch.Tensor | None = None) -> torch.Tensor:
    """Soft coverage (N, H, W) of ellipses centred (cx, cy) with semi-axes (a, b), rotated by (cos, sin),
    bent by ``bend`` (dy += bend * dx^2: a smile or an arch); x is (W,) or (N, 1, W), y is (H,) or (N, H, 1)."""
    dx = x.reshape(1, 1, -1) if x.ndim == 1 else x
    dy = y.reshape(1, -1, 1) if y.ndim == 1 else y
    dx, dy = dx - cx[:, None, None], dy - cy[:, None, None]
    if cos is not None:
        dx, dy = dx * cos[:, None, None] + dy * sin[:, None, None], dy * cos[:, None, None] - dx * sin[:, None, None]
    if bend is not None:
        dy = dy + bend[:, None, None] * dx * dx
    a, b = a[:, None, None], b[:, None, None]
    radius = torch.sqrt((dx / a).square_() + (dy / b).square_())
    return ((1.0 - radius) * torch.minimum(a, b)).div_(soft).add_(0.5).clamp_(0.0, 1.0)


def _over(canvas: torch.Tensor, alpha: torch.Tensor, colour: torch.Tensor) -> None:
    """Composite a flat ``colour`` (N, 3) with coverage ``alpha`` (N, H, W) onto ``canvas`` (N, 3, H, W)."""
    canvas.add_(alpha[:, None] * (colour[:, :, None, None] - canvas))


class _Batch:
    """One batch's identity and condition parameters, the per-image colours and styles, as tensors."""

    def __init__(self, identity: dict[str, np.ndarray], condition: dict[str, np.ndarray]) -> None:
        self.n, self.ident = len(identity["eye_y"]), identity
        self.p = {k: _t(v) for k, v in identity.items() if k in FINE}
        self.relief = _t(identity["relief"])
        c = condition
        skin = SKIN[identity["skin"]] * (1 + c["skin_jitter"])
        hair = HAIR[identity["hair_colour"]] * (1 + c["hair_jitter"])
        self.skin, self.hair = _t(np.clip(skin, 0, 1)), _t(np.clip(hair, 0, 1))
        self.iris, self.scene = _t(IRIS[identity["iris"]]), _t(SCENE[c["scene"]])
        styles = CATEGORICAL["hair_style"]
        restyled = np.minimum((condition["restyle"] / RESTYLE * styles).astype(np.int64), styles - 1)
        self.style = np.where(condition["restyle"] < RESTYLE, restyled, identity["hair_style"])
        self.opt = {k: _t(identity[k].astype(np.float64)) for k in OPTIONAL}
        self.c = c
        self.face = _t(~c["faceless"])


def _coarse_layer(b: _Batch) -> torch.Tensor:
    """Background, clothes, hair, ears, head and beard at 56 x 56 (N, 3, 56, 56)."""
    x, y, n = _grid(COARSE, 2.0), _grid(COARSE, 2.0), b.n
    tilt = _t(b.c["scene_tilt"])
    canvas = b.scene[:, :, None, None] * (1 + tilt[:, 0, None, None, None] * (x - CENTRE) / 56
                                          + tilt[:, 1, None, None, None] * (y[:, None] - CENTRE) / 56)
    blobs = _t(b.c["clutter"])
    for k in range(3):
        cx, cy = blobs[:, k, 0] * 112, blobs[:, k, 1] * 112
        size = 8 + 22 * blobs[:, k, 2]
        _over(canvas, _ellipse(x, y, cx, cy, size, size * (0.4 + blobs[:, k, 0]), soft=2.0),
              _t(SCENE[(b.c["scene"] + k + 1) % len(SCENE)]) * (0.7 + 0.5 * blobs[:, (k + 1) % 3, 2:3]))
    p, face, centre = b.p, b.face, torch.full((n,), CENTRE)
    head_cy = torch.full((n,), 62.0)
    clothes = _t(b.c["clothes"])
    _over(canvas, _ellipse(x, y, centre, torch.full((n,), 128.0), torch.full((n,), 50.0),
                           torch.full((n,), 28.0), soft=2.0) * face[:, None, None], clothes)
    _over(canvas, _ellipse(x, y, centre, head_cy + 36, p["head_w"] * 0.45, torch.full((n,), 16.0)) * face[:, None, None],
          b.skin * 0.85)
    style = torch.as_tensor(b.style)
    long_hair = (style == 3).float() * face
    _over(canvas, _ellipse(x, y, centre, head_cy + 10, p["head_w"] + 6, p["head_h"] + 10, soft=2.0)
          * long_hair[:, None, None], b.hair)
    ear_x = torch.abs(x - CENTRE)
    _over(canvas, _ellipse(ear_x, y, p["head_w"], p["eye_y"] + 4, torch.full((n,), 4.0), torch.full((n,), 7.0))
          * face[:, None, None], b.skin * 0.92)
    _over(canvas, _head(x, y, p, head_cy) * face[:, None, None], b.skin)
    hair_cover = (style > 0).float() * face
    cap = _ellipse(x, y, centre, head_cy - 2, p["head_w"] + 2.5, p["head_h"] + 3.5)
    line = (head_cy + p["hairline"] + _t(b.c["hairline_jitter"]) - 3.0 * (style == 2).float())[:, None, None]
    cap = cap * (line - y[None, :, None]).mul_(0.5).add_(0.5).clamp_(0, 1)
    _over(canvas, cap * hair_cover[:, None, None], b.hair)
    beard = _ellipse(x, y, centre, head_cy + 14, p["head_w"] * 0.8, torch.full((n,), 24.0))
    beard = beard * (y[None, :, None] - (p["eye_y"] + p["nose_len"] + 2)[:, None, None]).clamp_(0, 1)
    _over(canvas, beard * (b.opt["beard"] * (1 - _t(b.c["shaved"])) * face * 0.8)[:, None, None], b.hair)
    hat = _ellipse(x, y, centre, head_cy - 14, p["head_w"] + 4, torch.full((n,), 30.0))
    hat = hat * ((head_cy - 24)[:, None, None] - y[None, :, None]).mul_(0.5).add_(0.5).clamp_(0, 1)
    _over(canvas, hat * (_t(b.c["hat"]) * face)[:, None, None], _t(SCENE[(b.c["scene"] + 4) % len(SCENE)]) * 0.8)
    return canvas


def _head(x: torch.Tensor, y: torch.Tensor, p: dict[str, torch.Tensor], cy: torch.Tensor) -> torch.Tensor:
    """Head coverage: an ellipse whose width tapers towards the chin (jaw)."""
    below = (y[None, :, None] - cy[:, None, None]).clamp_(min=0) / p["head_h"][:, None, None]
    half_width = p["head_w"][:, None, None] * (1 - p["jaw"][:, None, None] * below.square())
    dx = (x[None, None, :] - CENTRE) / half_width
    dy = (y[None, :, None] - cy[:, None, None]) / p["head_h"][:, None, None]
    radius = torch.sqrt(dx.square() + dy.square())
    return ((1.0 - radius) * 30.0).add_(0.5).clamp_(0, 1)


# Fixed windows of the canonical 112 grid holding the fine features: (row0, row1, col0, col1).
EYES = (28, 74, 22, 90)
NOSE = (50, 84, 42, 70)
MOUTH = (56, 108, 30, 82)


def _window(window: tuple[int, int, int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x, |x - centre| and y coordinates of a window."""
    r0, r1, c0, c1 = window
    x = _grid(HR_SIZE, 1.0, c0, c1)
    return x, torch.abs(x - CENTRE), _grid(HR_SIZE, 1.0, r0, r1)


def _eyes(canvas: torch.Tensor, b: _Batch) -> None:
    """Sclera, iris, pupil, upper lid, brows and glasses (mirrored pair) in the eye window."""
    r0, r1, c0, c1 = EYES
    view = canvas[:, :, r0:r1, c0:c1]
    _, xm, y = _window(EYES)
    p, c, face = b.p, b.c, b.face
    cos, sin = _t(np.cos(-b.ident["eye_tilt"])), _t(np.sin(-b.ident["eye_tilt"]))
    open_h = p["eye_h"] * _t(c["eye_open"])
    sclera = _ellipse(xm, y, p["eye_dx"], p["eye_y"], p["eye_w"], open_h, 0.8, cos, sin) * face[:, None, None]
    _over(view, sclera * 0.9, torch.tensor([0.93, 0.92, 0.9]).expand(b.n, 3))
    iris_r = p["eye_h"] * 1.05
    iris = _ellipse(xm, y, p["eye_dx"] - 0.5, p["eye_y"], iris_r, iris_r, 0.8) * sclera
    _over(view, iris, b.iris)
    _over(view, _ellipse(xm, y, p["eye_dx"] - 0.5, p["eye_y"], iris_r * 0.45, iris_r * 0.45, 0.6) * sclera,
          torch.zeros(b.n, 3))
    lid = _ellipse(xm, y, p["eye_dx"], p["eye_y"] - 0.6, p["eye_w"] + 0.6, open_h + 0.8, 0.8, cos, sin)
    lid = (lid - sclera).clamp_(0, 1) * (p["eye_y"][:, None, None] - y[None, :, None]).clamp_(0, 1)
    _over(view, lid, b.skin * 0.25)
    brow_y = p["eye_y"] - p["brow_gap"] - _t(c["brow_raise"])
    bcos, bsin = _t(np.cos(b.ident["brow_tilt"])), _t(np.sin(b.ident["brow_tilt"]))
    brow = _ellipse(xm, y, p["eye_dx"] + 1.0, brow_y, p["brow_w"], p["brow_thick"], 0.8, bcos, bsin, p["brow_arch"])
    _over(view, brow * face[:, None, None], torch.minimum(b.hair, b.skin * 0.4))
    ring_r = p["glasses_r"]
    ring = _ellipse(xm, y, p["eye_dx"], p["eye_y"], ring_r + 0.7, ring_r * 0.8 + 0.7, 0.7)
    ring = ring - _ellipse(xm, y, p["eye_dx"], p["eye_y"], ring_r - 0.7, ring_r * 0.8 - 0.7, 0.7)
    bridge = ((1.2 - torch.abs(y[None, :, None] - (p["eye_y"] - 2)[:, None, None])).clamp_(0, 1)
              * ((p["eye_dx"] - ring_r)[:, None, None] - xm[None, None, :]).add_(1).clamp_(0, 1))
    worn = b.opt["glasses"] * (1 - _t(c["glasses_off"])) * face
    glasses = (ring.clamp_(0, 1) + bridge).clamp_(0, 1) * worn[:, None, None]
    _over(view, glasses, torch.full((b.n, 3), 0.12))


def _nose(canvas: torch.Tensor, b: _Batch) -> None:
    """Nose sides (shadow lines) and nostrils in the nose window."""
    r0, r1, c0, c1 = NOSE
    view = canvas[:, :, r0:r1, c0:c1]
    _, xm, y = _window(NOSE)
    p, face = b.p, b.face[:, None, None]
    tip = p["eye_y"] + p["nose_len"]
    side = (1.0 - torch.abs(xm[None, None, :] - p["nose_w"][:, None, None] * 0.55)).clamp_(0, 1)
    side = side * (y[None, :, None] - (p["eye_y"] + 4)[:, None, None]).mul_(0.15).clamp_(0, 1)
    side = side * (tip[:, None, None] + 1 - y[None, :, None]).clamp_(0, 1)
    _over(view, side * face * 0.35, b.skin * 0.55)
    nostril = _ellipse(xm, y, p["nose_w"] * 0.4, tip, p["nose_w"] * 0.25 + 0.6, torch.full((b.n,), 1.1), 0.7)
    _over(view, nostril * face * 0.85, b.skin * 0.3)


def _mouth(canvas: torch.Tensor, b: _Batch) -> None:
    """Lips (bent by the smile), open mouth and the optional mole in the mouth window."""
    r0, r1, c0, c1 = MOUTH
    view = canvas[:, :, r0:r1, c0:c1]
    x, xm, y = _window(MOUTH)
    p, c, face = b.p, b.c, b.face[:, None, None]
    centre_x = torch.zeros(b.n)
    mouth_y = p["eye_y"] + p["nose_len"] + p["mouth_gap"]
    smile, opened = _t(c["smile"]), _t(c["mouth_open"]) * 3.0
    bend = p["lip_curve"] - 0.03 * smile
    width = p["mouth_w"] * (1 + 0.15 * smile)
    lips = _ellipse(xm, y, centre_x, mouth_y, width, p["lip_thick"] + opened * 0.5, 0.9, bend=bend)
    _over(view, lips * face * 0.9, b.skin * torch.tensor([0.85, 0.55, 0.55]))
    gap = _ellipse(xm, y, centre_x, mouth_y, width * 0.92, 0.35 + opened * 0.5, 0.6, bend=bend)
    _over(view, gap * face, b.skin * 0.25)
    mole = _ellipse(x, y, CENTRE + p["mole_x"], p["mole_y"], torch.full((b.n,), 1.1), torch.full((b.n,), 1.1), 0.7)
    _over(view, mole * face * (b.opt["mole"] * 0.8)[:, None, None], b.skin * 0.35)


def _shade_relief(canvas: torch.Tensor, b: _Batch) -> None:
    """canvas *= 1 + RELIEF_AMPLITUDE * window * sum_k w_k cos(kx x + ky y + phase_k), window a soft ellipse
    (RELIEF_WINDOW) over the inner face, applied in the canonical frame so that pose moves it with the face.
    The sum is separable (cos(a + b) = cos a cos b - sin a sin b), so it costs one batched matrix product."""
    cx, cy, a, h = RELIEF_WINDOW
    c0, c1, r0, r1 = int(cx - a), int(np.ceil(cx + a)), int(cy - h), int(np.ceil(cy + h))
    x, y, r = _grid(HR_SIZE, 1.0, c0, c1), _grid(HR_SIZE, 1.0, r0, r1), b.relief
    ax = r[:, :, 0, None] * x + r[:, :, 2, None]  # (N, K, W)
    ay = r[:, :, 1, None] * y  # (N, K, H)
    w = r[:, :, 3, None]
    columns = torch.cat([w * torch.cos(ay), -w * torch.sin(ay)], 1).transpose(1, 2)  # (N, H, 2K)
    rows = torch.cat([torch.cos(ax), torch.sin(ax)], 1)  # (N, 2K, W)
    window = (1 - ((x - cx) / a).square()[None, :] - ((y - cy) / h).square()[:, None]).clamp_(0, 1)
    shading = torch.bmm(columns, rows).mul_(window * (RELIEF_AMPLITUDE * b.face[:, None, None])).add_(1)
    canvas[:, :, r0:r1, c0:c1].mul_(shading[:, None])


def _lighting(canvas: torch.Tensor, b: _Batch) -> None:
    """Directional shading and coloured gain: canvas *= gain * tint * (1 + s (lx x + ly y))."""
    c = b.c
    lx = _t(np.cos(c["light_angle"]) * c["light_strength"])
    ly = _t(np.sin(c["light_angle"]) * c["light_strength"])
    coordinate = (_grid(HR_SIZE, 1.0) - CENTRE) / CENTRE
    field = 1.0 + lx[:, None, None] * coordinate[None, None, :] + ly[:, None, None] * coordinate[None, :, None]
    gain = _t(c["gain"][:, None] * c["tint"])
    canvas.mul_(field[:, None]).mul_(gain[:, :, None, None])


def _warp_grid(c: dict[str, np.ndarray], size: int) -> torch.Tensor:
    """Sampling grid (N, size, size, 2) applying scale, roll, shift, yaw and pitch of each image; the
    warp is smooth, so it is evaluated at half the resolution and interpolated (a quarter of the work)."""
    half = _half_warp_grid(c, max(size // 2, 8))
    return F.interpolate(half, size=(size, size), mode="bilinear", align_corners=False).permute(0, 2, 3, 1)


def _half_warp_grid(c: dict[str, np.ndarray], size: int) -> torch.Tensor:
    """The warp of :func:`_warp_grid` at ``size`` px, channels first (N, 2, size, size)."""
    out = (_grid(size, HR_SIZE / size) - CENTRE)
    cos, sin = _t(np.cos(c["roll"]) / c["scale"]), _t(np.sin(c["roll"]) / c["scale"])
    sx, sy = _t(c["shift_x"]), _t(c["shift_y"])
    u = out[None, None, :] - sx[:, None, None]
    v = out[None, :, None] - sy[:, None, None]
    xc = cos[:, None, None] * u + sin[:, None, None] * v
    yc = cos[:, None, None] * v - sin[:, None, None] * u
    xc = xc + _bulge(xc, _t(c["yaw"]), 40.0)
    yc = yc + _bulge(yc, _t(c["pitch"]), 44.0)
    return torch.stack([xc, yc], dim=1).div_(CENTRE)


def _bulge(coordinate: torch.Tensor, angle: torch.Tensor, radius: float) -> torch.Tensor:
    """Smooth shift that is largest on the face's axis and zero beyond ``radius``: yaw/pitch."""
    inside = (1 - (coordinate / radius).square()).clamp_(min=0)
    return angle[:, None, None] * radius * 0.9 * inside


def _occluders(canvas: torch.Tensor, c: dict[str, np.ndarray]) -> None:
    """Soft axis-aligned rectangles (hands, scarves, objects) over about 10-40 % of the face."""
    rows = np.flatnonzero(c["occluded"])
    if len(rows) == 0:
        return
    o = c["occluder"][rows]
    size = canvas.shape[-1]
    coordinate = _grid(size, HR_SIZE / size)
    cx, cy = _t(30 + 52 * o[:, 0]), _t(40 + 50 * o[:, 1])
    hw, hh = _t(10 + 22 * o[:, 2]), _t(6 + 18 * o[:, 3])
    ax = (hw[:, None] - torch.abs(coordinate[None] - cx[:, None])).div_(1.5).clamp_(0, 1)
    ay = (hh[:, None] - torch.abs(coordinate[None] - cy[:, None])).div_(1.5).clamp_(0, 1)
    colour = _t(SCENE[(o[:, 4] * len(SCENE)).astype(np.int64)] * (0.6 + 0.6 * o[:, 5:6]))
    view = canvas[rows]
    _over(view, ay[:, :, None] * ax[:, None, :], colour)
    canvas[rows] = view


def _render(identity: dict[str, np.ndarray], condition: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Render one batch to (N, size, size, 3) uint8."""
    b = _Batch(identity, condition)
    canvas = F.interpolate(_coarse_layer(b), size=HR_SIZE, mode="bilinear", align_corners=False)
    _shade_relief(canvas, b)
    _eyes(canvas, b)
    _nose(canvas, b)
    _mouth(canvas, b)
    _lighting(canvas, b)
    image = F.grid_sample(canvas, _warp_grid(condition, size), mode="bilinear", padding_mode="border",
                          align_corners=False)
    _occluders(image, condition)
    return image.mul_(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


# ----------------------------------------------------------------------------------- camera chain
# Ranges of the camera chain: Gaussian defocus sigma and motion length (output px), gamma, exposure,
# sensor noise (grey levels), JPEG quality.
NATIVE_CHAIN = {"sigma": (0.3, 0.9), "motion": (0.0, 1.6), "gamma": (0.75, 1.4), "exposure": (0.55, 1.1),
                "noise": (1.5, 7.0), "quality": (35.0, 85.0)}
UI_CHAIN = {"sigma": (0.8, 1.8), "motion": (0.5, 3.0), "gamma": (1.0, 1.6), "exposure": (0.2, 0.8),
            "noise": (4.0, 12.0), "quality": (10.0, 35.0)}
HEIGHT_MEAN, HEIGHT_STD, HEIGHT_RANGE = 20.0, 6.5, (6, 32)


def heights_from_uniform(u: np.ndarray) -> np.ndarray:
    """TinyFace-like face heights: a normal (mean 20, sd 6.5) rounded and clipped to 6..32 px."""
    return np.clip(np.rint(HEIGHT_MEAN + HEIGHT_STD * _normal(u)), *HEIGHT_RANGE).astype(np.int64)


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
    small = synthetic_lr(image[None], height)[0].astype(np.float64) / 255
    kernel = _blur_kernel(value["sigma"], value["motion"], np.pi * u[6])
    pad = kernel.shape[0] // 2
    padded = np.pad(small, ((pad, pad), (pad, pad), (0, 0)), mode="reflect" if pad < height else "edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape, axis=(0, 1))
    blurred = np.einsum("hwcij,ij->hwc", windows, kernel)
    exposed = np.clip(blurred * value["exposure"], 0, 1) ** value["gamma"]
    noise = _normal(u[8:8 + 3 * height * height]).reshape(height, height, 3)
    noisy = np.clip(np.rint(exposed * 255 + value["noise"] * noise), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, format="JPEG", quality=int(value["quality"]))
    return np.asarray(Image.open(buffer).convert("RGB"))


def synthetic_lr(images: np.ndarray, size: int, upsample_to: int | None = None) -> np.ndarray:
    """Plain bicubic down-sampling of (N, H, W, 3) uint8 to (N, size, size, 3), antialiased like PIL's
    ``Image.resize(BICUBIC)``; with ``upsample_to``, bicubic up-sampling back to that size."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images have shape {images.shape} and dtype {images.dtype}; expected (N, H, W, 3) uint8")
    for name, value in (("size", size), ("upsample_to", upsample_to)):
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
            raise ValueError(f"{name} {value!r} is not valid; expected an int >= 1")
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    tensor = _resize(tensor, size).round_().clamp_(0, 255)
    if upsample_to is not None:
        tensor = _resize(tensor, upsample_to).round_().clamp_(0, 255)
    return tensor.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _resize(tensor: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased bicubic resize to (size, size): width first, then height, rounding to grey levels in
    between as PIL does (its intermediate image is 8-bit, which clips the bicubic overshoot)."""
    wide = F.interpolate(tensor, size=(tensor.shape[-2], size), mode="bicubic", antialias=True, align_corners=False)
    wide = wide.round_().clamp_(0, 255)
    return F.interpolate(wide, size=(size, size), mode="bicubic", antialias=True, align_corners=False)


# ----------------------------------------------------------------------------------- public API
def _index_array(name: str, values: Sequence[int] | np.ndarray, low: int = 0) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name} {values!r} is not valid; expected a 1-D sequence of ints")
    if array.size and array.min() < low:
        raise ValueError(f"{name} holds {array.min()}; expected ints >= {low}")
    return array.astype(np.int64)


class SynthFace:
    """The procedural face generator: identities, HR renders, native LR and unrecognizable faces.

    Everything is a pure function of ``seed`` and the indices asked for; ``similar_fraction`` of the
    identities copy another identity's parameters with a small perturbation.
    """

    def __init__(self, seed: int = 0, similar_fraction: float = 0.2, batch_size: int = 256) -> None:
        if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
            raise ValueError(f"seed {seed!r} is not valid; expected an int in [0, 2**32)")
        if not 0.0 <= similar_fraction <= 1.0:
            raise ValueError(f"similar_fraction {similar_fraction!r} is not valid; expected a float in [0, 1]")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size {batch_size!r} is not valid; expected an int >= 1")
        self.seed, self.similar_fraction, self.batch_size = int(seed), float(similar_fraction), batch_size

    def identity(self, index: int) -> IdentityParams:
        """The parameters of identity ``index`` (deterministic in (seed, index))."""
        table = identity_table(self.seed, _index_array("index", [index]), self.similar_fraction)
        return IdentityParams(
            index=int(index), parent=int(table["parent"][0]),
            fine={k: float(table[k][0]) for k in FINE},
            categorical={k: int(table[k][0]) for k in CATEGORICAL},
            optional={k: bool(table[k][0]) for k in OPTIONAL},
        )

    def render_hr(self, identities: Sequence[int], images: Sequence[int], size: int = HR_SIZE,
                  progress: bool = False) -> np.ndarray:
        """(N, size, size, 3) uint8: image k shows identity ``identities[k]`` in condition ``images[k]``."""
        ids, imgs = self._pairs(identities, images)
        if not isinstance(size, (int, np.integer)) or size < 8:
            raise ValueError(f"size {size!r} is not valid; expected an int >= 8")
        return self._batched(ids, imgs, size, progress, faceless=np.zeros(len(ids), dtype=bool))

    def native_heights(self, count: int, stream: int = 0) -> np.ndarray:
        """``count`` TinyFace-like face heights (6..32 px, mean about 20) of stream ``stream``."""
        if not isinstance(count, (int, np.integer)) or count < 0:
            raise ValueError(f"count {count!r} is not valid; expected an int >= 0")
        return heights_from_uniform(uniforms(self.seed, _HEIGHT, np.arange(count), stream, 1)[:, 0])

    def native_lr(self, identities: Sequence[int], images: Sequence[int],
                  heights: Sequence[int] | None = None, progress: bool = False) -> list[np.ndarray]:
        """Native LR faces through the camera chain, each (h, h, 3) uint8 at its native height h
        (drawn TinyFace-like per (identity, image) when ``heights`` is None)."""
        ids, imgs = self._pairs(identities, images)
        return self.camera_chain(self.render_hr(ids, imgs, progress=progress), ids, imgs, heights)

    def camera_chain(self, hr: np.ndarray, identities: Sequence[int], images: Sequence[int],
                     heights: Sequence[int] | None = None) -> list[np.ndarray]:
        """The native camera chain applied to already rendered ``render_hr(identities, images)``."""
        ids, imgs = self._pairs(identities, images)
        if heights is None:
            heights = heights_from_uniform(uniforms(self.seed, _HEIGHT, ids, imgs + (1 << 40), 1)[:, 0])
        heights = _index_array("heights", heights, low=2)
        if len(heights) != len(ids) or len(hr) != len(ids):
            raise ValueError(f"heights has {len(heights)} entries and hr {len(hr)}; expected one per image "
                             f"({len(ids)})")
        return self._chain(hr, heights, ids, imgs, NATIVE_CHAIN, _HEIGHT)

    def render_ui(self, indices: Sequence[int], progress: bool = False) -> list[np.ndarray]:
        """Unrecognizable faces (tiny, dark, blurred, occluded, extreme pose) and non-face crops
        (about a third), each (h, h, 3) uint8 at a native height of 4..12 px."""
        idx = _index_array("indices", indices)
        u = uniforms(self.seed, _UI, idx, 0, 4)
        ids = idx + (1 << 40)  # identities no other set uses
        imgs = np.zeros_like(idx)
        faceless = u[:, 0] < 0.33
        hr = self._batched(ids, imgs, HR_SIZE, progress, faceless, extreme=u)
        heights = 4 + (u[:, 1] * 9).astype(np.int64)
        return self._chain(hr, heights, ids, imgs, UI_CHAIN, _UI)

    # ------------------------------------------------------------------------------- internals
    def _pairs(self, identities: Sequence[int], images: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        ids, imgs = _index_array("identities", identities), _index_array("images", images)
        if len(ids) != len(imgs):
            raise ValueError(f"identities has {len(ids)} entries and images {len(imgs)}; expected equal lengths")
        return ids, imgs

    def _batched(self, ids: np.ndarray, imgs: np.ndarray, size: int, progress: bool, faceless: np.ndarray,
                 extreme: np.ndarray | None = None) -> np.ndarray:
        out = np.empty((len(ids), size, size, 3), dtype=np.uint8)
        starts = range(0, len(ids), self.batch_size)
        for start in tqdm(starts, desc="synthface", unit="batch", disable=not progress or len(starts) < 2):
            part = slice(start, start + self.batch_size)
            identity = identity_table(self.seed, ids[part], self.similar_fraction)
            condition = condition_table(self.seed, ids[part], imgs[part])
            condition["faceless"] = faceless[part]
            if extreme is not None:
                _make_extreme(condition, extreme[part])
            out[part] = _render(identity, condition, size)
        return out

    def _chain(self, hr: np.ndarray, heights: np.ndarray, ids: np.ndarray, imgs: np.ndarray,
               chain: dict[str, tuple[float, float]], stream: int) -> list[np.ndarray]:
        draws = uniforms(self.seed, stream, ids, imgs, 8 + 3 * int(heights.max(initial=1)) ** 2)
        return [camera(image, int(h), u, chain) for image, h, u in zip(hr, heights, draws)]


def _make_extreme(condition: dict[str, np.ndarray], u: np.ndarray) -> None:
    """Push the conditions of UI faces to extreme pose, occlusion and darkness."""
    sign = np.where(u[:, 2] < 0.5, -1.0, 1.0)
    condition["yaw"] = sign * (0.4 + 0.12 * u[:, 3])
    condition["pitch"] = condition["pitch"] * 2.0
    condition["occluded"] = condition["occluded"] | (u[:, 3] < 0.5)
    condition["gain"] = condition["gain"] * 0.8


def sample_grid(generator: SynthFace, identities: Sequence[int], images_per_identity: int = 4,
                cell: int = 64) -> np.ndarray:
    """A review grid (uint8 RGB): per identity one row of HR | synthetic LR 16 px | native LR images,
    then one row of UI images; every image shown at ``cell`` px (nearest-neighbour for LR)."""
    ids = np.repeat(np.asarray(identities), images_per_identity)
    imgs = np.tile(np.arange(images_per_identity), len(identities))
    hr = generator.render_hr(ids, imgs)
    lr = synthetic_lr(hr, 16)
    native = generator.native_lr(ids, imgs)
    ui = generator.render_ui(np.arange(3 * images_per_identity))

    def show(image: np.ndarray, smooth: bool) -> np.ndarray:
        resample = Image.BICUBIC if smooth else Image.NEAREST
        return np.asarray(Image.fromarray(image).resize((cell, cell), resample))

    rows = []
    for k in range(len(identities)):
        part = slice(k * images_per_identity, (k + 1) * images_per_identity)
        cells = [show(x, True) for x in hr[part]] + [show(x, False) for x in lr[part]]
        cells += [show(x, False) for x in native[part]]
        rows.append(np.concatenate(cells, axis=1))
    ui_cells = [show(x, False) for x in ui]
    blank = [np.zeros_like(ui_cells[0])] * (rows[0].shape[1] // cell - len(ui_cells))
    rows.append(np.concatenate(ui_cells + blank, axis=1))
    return np.concatenate(rows, axis=0)

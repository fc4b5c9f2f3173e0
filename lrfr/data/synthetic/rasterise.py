"""SynthFace rasteriser: one batch of identity and condition parameters to (N, size, size, 3) uint8 faces.

Rendering is vectorised over a batch with torch: soft-edged ellipses evaluated on coordinate grids and
alpha-composited. Layout (canonical frame, 112 x 112, face centred at x = 56): the coarse layers (background
clutter, clothes, hair, head, ears, beard) are drawn at 56 x 56 and upsampled; the fine features (eyes, brows,
glasses, nose, mouth, mole) are drawn at 112 x 112 inside fixed windows, mirrored about the face's axis so
that each left/right pair costs one evaluation, over the identity's relief shading. Lighting is applied in
the canonical frame, then one ``grid_sample`` applies pose (yaw/pitch as smooth horizontal/vertical feature
shifts, roll, scale) and crop misalignment; occluders are composited last.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lrfr.data.synthetic.parameters import (
    CATEGORICAL, FINE, HAIR, IRIS, OPTIONAL, RELIEF_AMPLITUDE, RELIEF_WINDOW, RESTYLE, SCENE, SKIN,
)

HR_SIZE = 112
COARSE = 56
CENTRE = 56.0


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


def render(identity: dict[str, np.ndarray], condition: dict[str, np.ndarray], size: int) -> np.ndarray:
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

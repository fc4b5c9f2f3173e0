"""SynthFace parameters: each identity's parameter vector (fine geometry, palette indices, optional
attributes, relief shading; some identities copy another's, "perceptually similar identities") and
each image's conditions (pose, expression, illumination, scene, occlusion, misalignment).

Identity information lives mostly at mid/fine scales: feature geometry (sizes, spacings and tilts, a few to
about ten pixels at 112 px) and the relief shading (wavelengths 8-16 px). Coarse cues (skin tone, hair colour
and style, head shape) are shared by population groups of identities (GROUP_OPTIONS) and perturbed per image
(gain, white balance, hats, restyled hair), so that identities are not separable at 8 px.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from lrfr.data.synthetic.draws import CONDITION, IDENTITY, RELIEF, SIMILAR, normal, uniforms

SKIN = np.array([[232, 196, 168], [214, 168, 130], [184, 136, 100], [140, 98, 70], [100, 70, 52]]) / 255
HAIR = np.array([[28, 22, 20], [70, 48, 32], [130, 92, 56], [196, 164, 110], [130, 126, 122]]) / 255
IRIS = np.array([[50, 32, 22], [96, 66, 40], [70, 96, 60], [70, 100, 140]]) / 255
SCENE = np.array([[120, 130, 140], [90, 110, 80], [170, 160, 140], [60, 60, 70], [150, 120, 100],
                  [200, 200, 205], [80, 90, 120], [110, 80, 70]]) / 255


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
    u = uniforms(seed, IDENTITY, indices, 0, _COLUMNS)
    table: dict[str, np.ndarray] = {}
    for column, (name, (lo, hi)) in enumerate(FINE.items()):
        table[name] = lo + (hi - lo) * u[:, column]
    for offset, (name, choices) in enumerate(CATEGORICAL.items(), start=len(FINE)):
        table[name] = np.minimum((u[:, offset] * choices).astype(np.int64), choices - 1)
    group = table["skin"]
    for column, (name, options) in enumerate(GROUP_OPTIONS.items()):
        group_draws = uniforms(seed, IDENTITY, group + (1 << 40), column, options)
        pick = np.minimum((table[name] * options) // CATEGORICAL[name], options - 1)
        table[name] = (group_draws[np.arange(len(group)), pick] * CATEGORICAL[name]).astype(np.int64)
    for offset, (name, probability) in enumerate(OPTIONAL.items(), start=len(FINE) + len(CATEGORICAL)):
        table[name] = u[:, offset] < probability
    return table


def _parents(seed: int, indices: np.ndarray, similar_fraction: float) -> np.ndarray:
    """The identity each index copies (-1 for none); parents are themselves never copies."""
    u = uniforms(seed, SIMILAR, indices, 0, 2)
    is_copy = (u[:, 0] < similar_fraction) & (indices > 0)
    parent = np.where(is_copy, (u[:, 1] * indices).astype(np.int64), -1)
    for _ in range(64):  # walk down to an identity that is not a copy itself
        pending = parent >= 0
        if not pending.any():
            break
        flag = uniforms(seed, SIMILAR, np.maximum(parent, 0), 0, 1)[:, 0] < similar_fraction
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
    jitter = normal(uniforms(seed, SIMILAR, indices, 1, len(FINE)))
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
# (see lrfr.experiments.calibration; with 600 training identities x 10 images, 20 epochs): without the relief, HR
# rank-1 was 19.0 % and 14 px kept 14 % of it; with it, 25.9 % and 7 %.
RELIEF_WAVES, RELIEF_BAND, RELIEF_AMPLITUDE = 16, (8.0, 16.0), 0.25
RELIEF_WINDOW = (56.0, 68.0, 24.0, 30.0)  # centre x, centre y, semi-axes of the face region it shades


def _relief(seed: int, indices: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """(N, RELIEF_WAVES, 4) waves (wave number x, wave number y, phase, weight) of each identity; a copy
    of another identity takes its parent's waves with jittered phases."""
    own = np.where(parent >= 0, parent, indices)
    u = uniforms(seed, RELIEF, own, 0, 4 * RELIEF_WAVES).reshape(len(indices), RELIEF_WAVES, 4)
    low, high = RELIEF_BAND
    wavelength = low * (high / low) ** u[..., 0]
    angle = np.pi * u[..., 1]
    jitter = normal(uniforms(seed, RELIEF, indices, 1, RELIEF_WAVES)) * 0.6 * (parent >= 0)[:, None]
    phase = 2 * np.pi * u[..., 2] + jitter
    weight = 0.5 + u[..., 3]
    weight = weight / np.sqrt((weight**2).sum(1, keepdims=True) / 2)
    k = 2 * np.pi / wavelength
    return np.stack([k * np.cos(angle), k * np.sin(angle), phase, weight], axis=-1)



# ----------------------------------------------------------------------------------- conditions
def condition_table(seed: int, identities: np.ndarray, images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image nuisance of image ``images[n]`` of identity ``identities[n]``."""
    u = uniforms(seed, CONDITION, identities, images, 52)
    z = normal(u)
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
        "occluded": u[:, 38] < 0.15, "occluder": uniforms(seed, CONDITION, identities, images + (1 << 40), 7),
        "faceless": np.zeros(len(identities), dtype=bool),
    }



def make_extreme(condition: dict[str, np.ndarray], u: np.ndarray) -> None:
    """Push the conditions of UI faces to extreme pose, occlusion and darkness."""
    sign = np.where(u[:, 2] < 0.5, -1.0, 1.0)
    condition["yaw"] = sign * (0.4 + 0.12 * u[:, 3])
    condition["pitch"] = condition["pitch"] * 2.0
    condition["occluded"] = condition["occluded"] | (u[:, 3] < 0.5)
    condition["gain"] = condition["gain"] * 0.8

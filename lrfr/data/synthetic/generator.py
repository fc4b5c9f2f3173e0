"""SynthFace: procedural, seeded, fast synthetic faces (identities x per-image conditions).

:class:`SynthFace` ties the parts together: identity and condition parameters
(:mod:`~lrfr.data.synthetic.parameters`), drawn by counter-based hashing
(:mod:`~lrfr.data.synthetic.draws`), rendered at HR (:mod:`~lrfr.data.synthetic.rasterise`) and passed
through the native camera chain (:mod:`~lrfr.data.synthetic.camera`).
``lrfr.experiments.calibration`` measures the resulting accuracy-versus-resolution curve.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from lrfr.data.degrade import synthetic_lr
from lrfr.data.synthetic.camera import NATIVE_CHAIN, UI_CHAIN, camera, heights_from_uniform
from lrfr.data.synthetic.draws import HEIGHT, UI, uniforms
from lrfr.data.synthetic.parameters import (
    CATEGORICAL, FINE, OPTIONAL, IdentityParams, condition_table, identity_table, make_extreme,
)
from lrfr.data.synthetic.rasterise import HR_SIZE, render

#: The version of SynthFace's output. Bump it whenever any rendered byte changes (parameters, rasteriser,
#: camera chain, draws or the resizer): synthetic data roots and the cached runs trained on them are keyed
#: by it. ``tests/test_synthface.py`` renders fixed seeds against stored hashes, so an unbumped change fails.
VERSION = 2  # 2: the native camera chain calibrated against Cheng et al. 2018, Table 4


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
        return heights_from_uniform(uniforms(self.seed, HEIGHT, np.arange(count), stream, 1)[:, 0])

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
            heights = heights_from_uniform(uniforms(self.seed, HEIGHT, ids, imgs + (1 << 40), 1)[:, 0])
        heights = _index_array("heights", heights, low=2)
        if len(heights) != len(ids) or len(hr) != len(ids):
            raise ValueError(f"heights has {len(heights)} entries and hr {len(hr)}; expected one per image "
                             f"({len(ids)})")
        return self._chain(hr, heights, ids, imgs, NATIVE_CHAIN, HEIGHT)

    def render_ui(self, indices: Sequence[int], progress: bool = False) -> list[np.ndarray]:
        """Unrecognizable faces (tiny, dark, blurred, occluded, extreme pose) and non-face crops
        (about a third), each (h, h, 3) uint8 at a native height of 4..12 px."""
        idx = _index_array("indices", indices)
        u = uniforms(self.seed, UI, idx, 0, 4)
        ids = idx + (1 << 40)  # identities no other set uses
        imgs = np.zeros_like(idx)
        faceless = u[:, 0] < 0.33
        hr = self._batched(ids, imgs, HR_SIZE, progress, faceless, extreme=u)
        heights = 4 + (u[:, 1] * 9).astype(np.int64)
        return self._chain(hr, heights, ids, imgs, UI_CHAIN, UI)

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
                make_extreme(condition, extreme[part])
            out[part] = render(identity, condition, size)
        return out

    def _chain(self, hr: np.ndarray, heights: np.ndarray, ids: np.ndarray, imgs: np.ndarray,
               chain: dict[str, tuple[float, float]], stream: int) -> list[np.ndarray]:
        draws = uniforms(self.seed, stream, ids, imgs, 8 + 3 * int(heights.max(initial=1)) ** 2)
        return [camera(image, int(h), u, chain) for image, h, u in zip(hr, heights, draws)]



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

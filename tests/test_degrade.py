"""The one bicubic resizer (lrfr.data.degrade): PIL's rounding on uint8, the float path datasets use,
and the synthetic-LR transform."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lrfr.data.base import to_tensor
from lrfr.data.degrade import SyntheticLR, resize, synthetic_lr
from lrfr.data.synthetic import SynthFace


@pytest.fixture(scope="module")
def hr() -> np.ndarray:
    return SynthFace(seed=3).render_hr([0, 0, 1, 5, 9, 12, 40, 41], [0, 3, 0, 1, 0, 7, 4, 2])


def pil(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(x).resize(size[::-1], Image.BICUBIC)) for x in images]).astype(int)


@pytest.mark.parametrize("size", [8, 14, 16, 24, 32, (20, 16)])
def test_uint8_matches_pil_bicubic(hr, size):
    pair = size if isinstance(size, tuple) else (size, size)
    ours = synthetic_lr(hr, size)
    assert ours.dtype == np.uint8 and ours.shape == (len(hr), *pair, 3)
    assert np.abs(ours.astype(int) - pil(hr, pair)).max() <= 1
    back = synthetic_lr(hr, size, upsample_to=32)
    difference = np.abs(back.astype(int) - pil(ours, (32, 32)))
    assert back.shape == (len(hr), 32, 32, 3) and difference.max() <= 2 and (difference > 1).mean() < 1e-3
    assert np.array_equal(resize(hr[0], size), ours[0])  # one image as in the batch


def test_float_path_is_the_uint8_path_without_rounding(hr):
    """On [-1, 1] tensors the same two passes without quantisation: within half a grey level per pass
    of the uint8 result, clipped to [-1, 1], and the identity at the same size."""
    images = to_tensor(hr)
    small = resize(images, 16)
    assert small.dtype == torch.float32 and small.shape == (len(hr), 3, 16, 16)
    as_pixels = ((small + 1) * 127.5).permute(0, 2, 3, 1).numpy()
    assert np.abs(as_pixels - synthetic_lr(hr, 16)).max() <= 1.0
    assert small.min() >= -1 and small.max() <= 1
    up = resize(small, 112)
    assert up.min() >= -1 and up.max() <= 1  # the overshoot of up-sampling is clipped
    assert resize(images, 112) is images
    assert torch.equal(resize(images[2], 16), small[2])


def test_synthetic_lr_transform_keeps_the_size_and_works_on_both_types(hr):
    transform = SyntheticLR(8)
    image = to_tensor(hr[0])
    degraded = transform(image)
    assert degraded.shape == image.shape
    assert torch.equal(degraded, resize(resize(image, 8), 112))
    assert np.array_equal(transform(hr[0]), synthetic_lr(hr[:1], 8, upsample_to=112)[0])
    assert SyntheticLR(8, upsample_to=32)(image).shape == (3, 32, 32)


@pytest.mark.parametrize("call, error, message", [
    (lambda: resize(np.zeros((2, 8, 8), np.uint8), 4), ValueError, r"expected \(H, W, 3\) or \(N, H, W, 3\) uint8"),
    (lambda: resize(np.zeros((8, 8, 3), np.float32), 4), ValueError, "uint8"),
    (lambda: resize(torch.zeros(3, 8, 8, dtype=torch.uint8), 4), ValueError, "float"),
    (lambda: resize(np.zeros((1, 8, 8, 3), np.uint8), 0), ValueError, "size 0 is not valid"),
    (lambda: resize([[0]], 4), TypeError, "expected a uint8 NumPy array or a float tensor"),
    (lambda: SyntheticLR(0), ValueError, "size 0 is not valid"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()

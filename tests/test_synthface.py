"""SynthFace: determinism, the output hashes of its version, shapes, the native height distribution,
similar identities, the unrecognizable set, argument errors and the benchmark."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from lrfr.cli import main
from lrfr.data.degrade import synthetic_lr
from lrfr.data.synthetic import FINE, VERSION, SynthFace, sample_grid
from lrfr.data.synthetic import parameters, rasterise
from lrfr.data.writers import one_torch_thread

IDS = np.array([0, 0, 1, 5, 5, 9, 12, 40])
IMGS = np.array([0, 3, 0, 1, 2, 0, 7, 4])


@pytest.fixture(scope="module")
def generator() -> SynthFace:
    return SynthFace(seed=3)


@pytest.fixture(scope="module")
def hr(generator: SynthFace) -> np.ndarray:
    return generator.render_hr(IDS, IMGS)


# sha256 (first 16 hex digits) of the bytes SynthFace(seed=7) renders for HASH_IDS / HASH_IMGS, by version.
OUTPUT_HASHES = {
    1: {"hr": "b167e71d1461cf74", "native_lr": "05cb51a38f35364c", "ui": "4ffd2b27fa2f1a20"},
    2: {"hr": "b167e71d1461cf74", "native_lr": "259df2623fefdbb5", "ui": "4ffd2b27fa2f1a20"},  # calibrated native chain
}
HASH_IDS = np.array([0, 1, 2, 3, 50, 51, 999, 123456])
HASH_IMGS = np.arange(8)


def _digest(images) -> str:
    digest = hashlib.sha256()
    for image in images:
        digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()[:16]


def test_output_matches_the_hashes_of_its_version():
    """Any change of the rendered bytes must bump lrfr.data.synthetic.VERSION (data roots and cached runs
    are keyed by it) and record the new hashes here; a change that does not alter output needs neither."""
    with one_torch_thread():  # as the writers render: bicubic rounding depends on the thread count
        generator = SynthFace(seed=7)
        found = {"hr": _digest(generator.render_hr(HASH_IDS, HASH_IMGS)),
                 "native_lr": _digest(generator.native_lr(HASH_IDS, HASH_IMGS)),
                 "ui": _digest(generator.render_ui(np.arange(8)))}
    assert VERSION in OUTPUT_HASHES, f"SynthFace VERSION {VERSION} has no recorded hashes; record {found}"
    assert found == OUTPUT_HASHES[VERSION], (
        f"SynthFace output changed without a version bump (VERSION {VERSION}): bump lrfr.data.synthetic.VERSION "
        f"and record {found}")


def test_hr_shape_dtype_and_content(hr):
    assert hr.shape == (8, 112, 112, 3) and hr.dtype == np.uint8
    assert 40 < hr.mean() < 200 and hr.std() > 20
    assert not np.array_equal(hr[0], hr[1])  # same identity, another condition
    assert SynthFace(seed=3).render_hr([1], [0], size=48).shape == (1, 48, 48, 3)


def test_same_seed_same_bytes_different_seed_differs(hr):
    assert np.array_equal(SynthFace(seed=3).render_hr(IDS, IMGS), hr)
    other = SynthFace(seed=4).render_hr(IDS, IMGS)
    assert all(not np.array_equal(a, b) for a, b in zip(hr, other))
    assert SynthFace(seed=3).identity(7) == SynthFace(seed=3).identity(7)
    assert SynthFace(seed=3).identity(7) != SynthFace(seed=4).identity(7)


def test_an_image_does_not_depend_on_its_batch(generator, hr):
    alone = np.concatenate([generator.render_hr([i], [k]) for i, k in zip(IDS, IMGS)])
    assert np.array_equal(alone, hr)
    small_batches = SynthFace(seed=3, batch_size=3).render_hr(IDS[::-1], IMGS[::-1])[::-1]
    assert np.array_equal(small_batches, hr)
    native = generator.native_lr(IDS, IMGS)
    assert all(np.array_equal(a, generator.native_lr([i], [k])[0]) for a, i, k in zip(native, IDS, IMGS))


def test_native_lr_is_at_native_size_and_heights_are_tinyface_like(generator):
    native = generator.native_lr(IDS, IMGS, heights=[6, 8, 12, 16, 20, 24, 28, 32])
    assert [x.shape for x in native] == [(h, h, 3) for h in (6, 8, 12, 16, 20, 24, 28, 32)]
    assert all(x.dtype == np.uint8 for x in native)
    heights = generator.native_heights(20_000)
    assert heights.min() == 6 and heights.max() == 32
    assert abs(heights.mean() - 20) < 2 and 4 < heights.std() < 9
    assert np.array_equal(heights, SynthFace(seed=3).native_heights(20_000))
    assert not np.array_equal(heights, generator.native_heights(20_000, stream=1))
    drawn = [x.shape[0] for x in generator.native_lr(np.arange(300), np.zeros(300, int))]
    assert 6 <= min(drawn) and max(drawn) <= 32 and abs(np.mean(drawn) - 20) < 2


def test_native_lr_is_degraded_more_than_synthetic_lr(generator, hr):
    """Same faces at 16 px: the camera chain departs further from the clean bicubic image."""
    native = np.stack(generator.native_lr(IDS, IMGS, heights=[16] * len(IDS))).astype(float)
    clean = synthetic_lr(hr, 16).astype(float)
    assert np.abs(native - clean).mean() > 8


def test_similar_identities_are_closer_than_random_pairs():
    generator = SynthFace(seed=0, similar_fraction=0.3)
    params = [generator.identity(i) for i in range(300)]
    copies = [p for p in params if p.parent >= 0]
    assert 0.2 < len(copies) / len(params) < 0.4
    assert all(generator.identity(p.parent).parent == -1 and p.parent < p.index for p in copies)
    similar = [np.linalg.norm(p.vector() - params[p.parent].vector()) for p in copies]
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, len(params), (500, 2))
    random = [np.linalg.norm(params[a].vector() - params[b].vector()) for a, b in pairs if a != b]
    assert np.median(similar) < 0.4 * np.median(random)
    assert all(p.categorical == params[p.parent].categorical for p in copies)
    assert all(0 <= v <= 1 for p in params for v in p.vector()) and len(params[0].vector()) == len(FINE)
    assert SynthFace(similar_fraction=0.0).identity(50).parent == -1


def test_coarse_cues_are_shared_by_population_groups():
    """Skin tone names the group; each GROUP_OPTIONS attribute takes at most its group's few values."""
    table = parameters.identity_table(0, np.arange(3000), 0.2)
    groups = np.unique(table["skin"])
    assert len(groups) == len(parameters.SKIN)
    for name, options in parameters.GROUP_OPTIONS.items():
        for group in groups:
            assert len(np.unique(table[name][table["skin"] == group])) <= options, (name, group)
    fine = np.stack([table[name] for name in FINE], 1)
    assert len(np.unique(fine.round(6), axis=0)) > 2900  # identities still differ individually


def test_relief_waves_lie_in_the_band_and_copies_keep_their_parents_waves():
    table = parameters.identity_table(0, np.arange(400), 0.3)
    relief, parent = table["relief"], table["parent"]
    wavelength = 2 * np.pi / np.hypot(relief[..., 0], relief[..., 1])
    low, high = parameters.RELIEF_BAND
    assert relief.shape == (400, parameters.RELIEF_WAVES, 4)
    assert wavelength.min() >= low - 1e-9 and wavelength.max() <= high + 1e-9
    np.testing.assert_allclose((relief[..., 3] ** 2).sum(1) / 2, 1.0)  # unit variance of the wave sum
    copies = np.flatnonzero(parent >= 0)
    assert len(copies) > 50
    np.testing.assert_allclose(relief[copies, :, :2], relief[parent[copies], :, :2])
    assert not np.allclose(relief[copies, :, 2], relief[parent[copies], :, 2])  # phases jittered
    others = (copies + 1) % 400
    assert not np.allclose(relief[copies, :, :2], relief[others, :, :2])


def test_relief_shading_matches_its_formula():
    """One wave on a flat grey canvas: 1 + A * window * w cos(kx x + ky y + phase) inside the window, 1 outside."""
    kx, ky, phase, weight = 0.5, -0.3, 0.7, np.sqrt(2.0)
    batch = SimpleNamespace(relief=torch.tensor([[[kx, ky, phase, weight]]], dtype=torch.float32),
                            face=torch.ones(1))
    canvas = torch.full((1, 3, 112, 112), 0.5)
    rasterise._shade_relief(canvas, batch)
    cx, cy, a, h = parameters.RELIEF_WINDOW
    x = np.arange(112) + 0.5
    window = np.clip(1 - ((x[None, :] - cx) / a) ** 2 - ((x[:, None] - cy) / h) ** 2, 0, 1)
    expected = 0.5 * (1 + parameters.RELIEF_AMPLITUDE * window * weight
                      * np.cos(kx * x[None, :] + ky * x[:, None] + phase))
    np.testing.assert_allclose(canvas[0, 1].numpy(), expected, atol=1e-5)
    faceless = torch.full((1, 3, 112, 112), 0.5)
    rasterise._shade_relief(faceless, SimpleNamespace(relief=batch.relief, face=torch.zeros(1)))
    assert torch.equal(faceless, torch.full((1, 3, 112, 112), 0.5))


def test_ui_images_are_small_dark_and_low_contrast(generator, hr):
    ui = generator.render_ui(np.arange(60))
    assert all(x.dtype == np.uint8 and x.ndim == 3 and x.shape[0] == x.shape[1] <= 12 for x in ui)
    assert np.mean([x.mean() for x in ui]) < 0.7 * hr.mean()
    assert np.median([x.std() for x in ui]) < 0.5 * np.median([x.std() for x in hr])
    assert all(np.array_equal(a, b) for a, b in zip(ui, SynthFace(seed=3).render_ui(np.arange(60))))


def test_sample_grid_layout(generator):
    grid = sample_grid(generator, [0, 1], images_per_identity=2, cell=32)
    assert grid.shape == (3 * 32, 6 * 32, 3) and grid.dtype == np.uint8


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda g: g.render_hr([0, 1], [0]), "identities has 2 entries and images 1"),
        (lambda g: g.render_hr([-1], [0]), "identities holds -1"),
        (lambda g: g.render_hr([0.5], [0]), "expected a 1-D sequence of ints"),
        (lambda g: g.render_hr([0], [0], size=4), "size 4 is not valid"),
        (lambda g: g.native_lr([0, 1], [0, 0], heights=[10]), "heights has 1 entries and hr 2"),
        (lambda g: g.native_lr([0], [0], heights=[1]), "heights holds 1"),
        (lambda g: g.native_heights(-1), "count -1 is not valid"),
        (lambda g: g.render_ui([[0]]), "indices"),
    ],
)
def test_bad_arguments_raise_clear_errors(generator, call, message):
    with pytest.raises(ValueError, match=message):
        call(generator)


@pytest.mark.parametrize("kwargs, message", [
    ({"seed": -1}, "seed -1 is not valid"),
    ({"similar_fraction": 1.5}, "similar_fraction 1.5 is not valid"),
    ({"batch_size": 0}, "batch_size 0 is not valid"),
])
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SynthFace(**kwargs)


def test_bench_synth_prints_json_lines_and_saves_the_grid(capsys, tmp_path):
    grid = tmp_path / "samples" / "grid.png"
    main(["bench", "synth", "--images", "16", "--batch-size", "8", "--repeats", "1", "--grid", str(grid)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line.get("kind") for line in lines] == ["hr", "native_lr", "ui", None]
    assert all(line["bench"] == "synth" and line["img_per_s"] > 0 and line["images"] == 16 for line in lines[:3])
    assert lines[3]["grid"] == str(grid) and Image.open(grid).size == (12 * 64, 7 * 64)

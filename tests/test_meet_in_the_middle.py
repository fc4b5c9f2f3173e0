"""Grm et al. (2023): gallery degradations (Table 1, Eq. 1, RM), correlation similarity (Eq. 3), template and
score fusion (Eq. 4-5, Fig. 4) and the hypothesis templates, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import correlation as scipy_correlation

from lrfr.data import gallery_degradations as gd
from lrfr.experiments import grm2023 as g5
from lrfr.protocols import fusion
from lrfr.protocols.hypotheses import blur, paper_sigmas, size_batches


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _grey(value: float, size: int = 32, n: int = 1) -> torch.Tensor:
    """A constant image at ``value`` in [0, 1] units, as lrfr pixels."""
    return torch.full((n, 3, size, size), value * 2 - 1)


def _dot(size: int = 41) -> torch.Tensor:
    """A black image (-1) with one white (+1) pixel in the centre."""
    image = torch.full((1, 3, size, size), -1.0)
    image[..., size // 2, size // 2] = 1.0
    return image


def _unit(images: torch.Tensor) -> torch.Tensor:
    return (images + 1) / 2


# ----------------------------------------------------------------------------- Table 1


def test_gaussian_noise_has_variance_0_02_in_unit_pixels():
    out = _unit(gd.gaussian_noise(_grey(0.5, 128), _generator()))
    assert abs(float(out.mean()) - 0.5) < 0.005
    assert abs(float(out.var()) - 0.02) < 0.001


def test_speckle_noise_scales_with_the_pixel():
    black = gd.speckle_noise(_grey(0.0, 64), _generator())
    assert torch.equal(black, _grey(0.0, 64))  # u + u n = 0 for u = 0
    out = _unit(gd.speckle_noise(_grey(0.5, 128), _generator()))
    assert abs(float(out.var()) - 0.25 * 0.02) < 0.0005


def test_color_jitter_keeps_grey_and_luma():
    grey = _grey(0.4, 16, n=4)
    assert torch.allclose(gd.color_jitter(grey, _generator()), grey, atol=1e-5)
    colour = torch.zeros(4, 3, 8, 8)
    colour[:, 0], colour[:, 1], colour[:, 2] = 0.3, -0.1, -0.2  # inside the gamut after any rotation
    out = gd.color_jitter(colour, _generator())
    luma = torch.tensor([0.299, 0.587, 0.114])
    assert torch.allclose(torch.einsum("i,nihw->nhw", luma, _unit(out)), torch.einsum("i,nihw->nhw", luma, _unit(colour)), atol=1e-5)
    assert not torch.allclose(out, colour, atol=1e-3)


def test_brightness_jitter_is_an_increasing_affine_map_per_image():
    ramp = torch.linspace(0.3, 0.6, 64).reshape(1, 1, 8, 8).expand(3, 3, 8, 8) * 2 - 1
    out = gd.brightness_jitter(ramp, _generator(1))
    for before, after in zip(ramp, out):
        slope, intercept = np.polyfit(before.flatten().numpy(), after.flatten().numpy(), 1)
        assert slope > 0
        assert np.allclose(after.flatten().numpy(), slope * before.flatten().numpy() + intercept, atol=1e-5)
    assert not torch.allclose(out, ramp, atol=1e-3)


def test_motion_blur_spreads_a_dot_over_20_horizontal_pixels():
    out = _unit(gd.motion_blur(_dot(), _generator()))[0, 0]
    row = out[20]
    assert int((row > 1e-6).sum()) == 20
    assert torch.allclose(row[row > 1e-6], torch.full((20,), 1 / 20))
    others = torch.cat([out[:20], out[21:]])
    assert float(others.abs().max()) < 1e-6  # nothing leaves the row


def test_gaussian_blur_is_the_sigma_1_1_window_5_kernel():
    out = _unit(gd.gaussian_blur(_dot(), _generator()))[0, 0]
    x = np.arange(5) - 2.0
    line = np.exp(-x**2 / (2 * 1.1**2))
    kernel = np.outer(line, line) / np.outer(line, line).sum()
    assert np.allclose(out[18:23, 18:23].numpy(), kernel, atol=1e-6)
    assert float(out.sum()) == pytest.approx(1.0, abs=1e-5)


def test_disk_blur_covers_the_81_pixels_within_radius_5():
    out = _unit(gd.disk_blur(_dot(), _generator()))[0, 0]
    assert int((out > 1e-6).sum()) == 81  # lattice points with x^2 + y^2 <= 25
    assert float(out.max()) == pytest.approx(1 / 81, abs=1e-6)


def test_perspective_and_shear_keep_a_constant_image_and_move_structure():
    grey = _grey(0.3, 32, n=2)
    for warp in (gd.perspective, gd.shear):
        assert torch.allclose(warp(grey, _generator()), grey, atol=1e-5)
    columns = torch.full((1, 3, 32, 32), -1.0)
    columns[..., 15:17] = 1.0  # a vertical bar
    sheared = _unit(gd.shear(columns, _generator(3)))[0, 0]
    centres = [(sheared[r] * torch.arange(32.0)).sum() / sheared[r].sum() for r in (2, 29)]
    assert abs(float(centres[0] - centres[1])) > 2  # the bar is slanted
    assert not torch.allclose(gd.perspective(columns, _generator()), columns, atol=1e-2)


def test_shear_moves_pixels_along_rows_only():
    rows = torch.full((1, 3, 32, 32), -1.0)
    rows[..., 10, :] = 1.0
    out = _unit(gd.shear(rows, _generator(5)))[0, 0]
    assert float(out[10, 8:24].min()) > 0.99 and float(out[:9].max()) < 1e-6


def test_down_up_flattens_a_one_pixel_checkerboard_and_keeps_a_constant():
    board = (torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2 * 2.0 - 1
    image = board.expand(1, 3, 32, 32).float()
    out = gd.down_up(image, _generator())
    assert out.shape == image.shape
    assert float(out[..., 4:-4, 4:-4].std()) < 0.05  # the 1-px pattern is gone
    assert torch.allclose(gd.down_up(_grey(0.7), _generator()), _grey(0.7), atol=1e-5)


def test_patch_shuffle_permutes_within_each_2x2_patch():
    image = torch.arange(3 * 9 * 9, dtype=torch.float32).reshape(1, 3, 9, 9) / 243 * 2 - 1
    out = gd.patch_shuffle(image, _generator())
    assert not torch.equal(out, image)
    patches = lambda t: t[..., :8, :8].reshape(1, 3, 4, 2, 4, 2).permute(0, 1, 2, 4, 3, 5).reshape(1, 3, 16, 4)
    assert torch.equal(patches(out).sort(dim=-1).values, patches(image).sort(dim=-1).values)
    assert torch.equal(out[..., 8, :], image[..., 8, :]) and torch.equal(out[..., :, 8], image[..., :, 8])
    # the same permutation in every channel: channel offsets are constant
    assert torch.allclose(out[:, 1] - out[:, 0], image[:, 1] - image[:, 0])


def test_every_degradation_is_reproducible_from_its_seed():
    image = torch.rand(2, 3, 24, 24) * 2 - 1
    for name, function in gd.DEGRADATIONS.items():
        assert torch.equal(function(image, _generator(7)), function(image, _generator(7))), name


# ----------------------------------------------------------------------------- Eq. 1 and RM


def test_chains_of_length_up_to_3_number_1463():
    every = gd.chains()
    assert len(gd.DEGRADATIONS) == 11
    assert len(every) == 11 + 11**2 + 11**3 == 1463
    assert len(set(every)) == len(every)
    assert len(gd.chains(["motion_blur", "shear"], 2)) == 2 + 4


def test_a_chain_halves_between_steps_and_rm_matches_the_probe():
    image = torch.rand(1, 3, 112, 112) * 2 - 1
    for length, side in ((1, 112), (2, 56), (3, 28)):
        chain = ("gaussian_blur",) * length
        assert gd.degrade(image, chain, _generator()).shape[-2:] == (side, side) == gd.chain_size((112, 112), length)
    assert gd.matched_size((10, 12), 4) == (40, 48)
    assert gd.resolution_match(image, (10, 12), 4).shape[-2:] == (40, 48)
    assert gd.resolution_match(image, (9, 9)).shape[-2:] == (9, 9)
    assert torch.equal(gd.degrade(image, (), _generator()), image)


def test_degrade_applies_the_steps_in_order_with_downsampling_between():
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    expected = gd.disk_blur(gd.resize(gd.motion_blur(image, _generator()), (32, 32)), _generator())
    assert torch.allclose(gd.degrade(image, ("motion_blur", "disk_blur"), _generator()), expected)
    with pytest.raises(ValueError, match="unknown degradation 'sepia'"):
        gd.degrade(image, ("sepia",), _generator())


# ----------------------------------------------------------------------------- Eq. 3-5, Fig. 4


def test_correlation_by_hand_and_against_scipy():
    a, b = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[2.0, 2.0, 5.0]])
    # a - mean = (-1, 0, 1); b - mean = (-1, -1, 2): r = (1 + 0 + 2) / (sqrt 2 * sqrt 6) = 3 / sqrt 12
    assert float(fusion.correlation(a, b)) == pytest.approx(3 / math.sqrt(12))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 7)), rng.normal(size=(3, 7))
    ours = fusion.correlation(torch.tensor(x), torch.tensor(y)).numpy()
    assert np.allclose(ours, [[1 - scipy_correlation(u, v) for v in y] for u in x])
    assert float(fusion.correlation(a, 5 * a + 3)) == pytest.approx(1.0)  # invariant to offset and scale


def _tiny() -> tuple[torch.Tensor, torch.Tensor]:
    """One probe and one gallery image, 2 scales x 2 hypotheses, 3-d templates."""
    probe = torch.tensor([[[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]]])
    gallery = torch.tensor([[[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], [[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]]])
    return probe, gallery


def _r(u: list[float], v: list[float]) -> float:
    return 1 - scipy_correlation(u, v)


def test_template_fusions_by_hand():
    probe, gallery = _tiny()
    t_add = fusion.fuse_templates(probe, "T_add")
    assert torch.equal(t_add, torch.tensor([[[2.0, 2.0, 1.0]]]))  # Eq. 4: sum of the four hypotheses
    t_concat = fusion.fuse_templates(probe, "T_concat")
    assert torch.equal(t_concat, torch.tensor([[[1.0, 1.0, 0.0, 1.0, 1.0, 1.0]]]))  # Eq. 5: per-scale sums, joined
    both_add = fusion.fused_scores(probe, gallery, fusion.Fusion("T_add", "T_add"))
    assert float(both_add[0, 0]) == pytest.approx(_r([2, 2, 1], [2, 1, 2]))
    concat = fusion.fused_scores(probe, gallery, fusion.Fusion("T_concat", "T_concat"))
    assert float(concat[0, 0]) == pytest.approx(_r([1, 1, 0, 1, 1, 1], [1, 0, 1, 1, 1, 1]))


def test_score_fusions_by_hand():
    probe, gallery = _tiny()
    p = probe.reshape(4, 3).tolist()
    g = gallery.reshape(4, 3).tolist()
    matrix = np.array([[_r(u, v) for v in g] for u in p])  # rows: probe hypotheses
    assert fusion.fused_scores(probe, gallery, fusion.Fusion("S_max", "S_max"))[0, 0] == pytest.approx(matrix.max())
    assert fusion.fused_scores(probe, gallery, fusion.Fusion("S_add", "S_add"))[0, 0] == pytest.approx(matrix.sum())
    # Fig. 4(c): rows reduced over the gallery hypotheses first, then over the probe hypotheses
    assert fusion.fused_scores(probe, gallery, fusion.Fusion("S_add", "S_max"))[0, 0] == pytest.approx(matrix.max(axis=1).sum())
    assert fusion.fused_scores(probe, gallery, fusion.Fusion("S_max", "S_add"))[0, 0] == pytest.approx(matrix.sum(axis=1).max())
    # Table 3: T_add on one side, a score fusion on the other
    summed_probe = [2.0, 2.0, 1.0]
    assert fusion.fused_scores(probe, gallery, fusion.Fusion("T_add", "S_max"))[0, 0] == pytest.approx(max(_r(summed_probe, v) for v in g))
    summed_gallery = [2.0, 1.0, 2.0]
    assert fusion.fused_scores(probe, gallery, fusion.Fusion("S_add", "T_add"))[0, 0] == pytest.approx(sum(_r(u, summed_gallery) for u in p))


def test_fusion_rejects_one_sided_concat_and_unknown_names():
    with pytest.raises(ValueError, match="T_concat must be applied to both sides"):
        fusion.Fusion("T_concat", "S_max")
    with pytest.raises(ValueError, match="Fusion.gallery 'S_min'"):
        fusion.Fusion("S_max", "S_min")


def test_fused_scores_chunking_does_not_change_scores():
    rng = np.random.default_rng(1)
    probe, gallery = rng.normal(size=(7, 2, 3, 5)), rng.normal(size=(4, 2, 2, 5))
    for f in (fusion.Fusion("S_max", "S_add"), fusion.Fusion("T_concat", "T_concat")):
        assert np.allclose(fusion.fused_scores(probe, gallery, f, chunk=2), fusion.fused_scores(probe, gallery, f, chunk=64))


def test_best_hypothesis_and_first_ranks_by_hand():
    probe = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.2]]])
    gallery = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert fusion.best_hypothesis(probe, gallery).tolist() == [1]
    scores = np.array([[0.9, 0.5, 0.9], [0.1, 0.2, 0.3]])
    ranks = fusion.first_ranks(scores, np.array([0, 2]), np.array([0, 1, 2]))
    assert ranks.tolist() == [2, 1]  # a tie counts against the mate
    with pytest.raises(ValueError, match="exactly one mate"):
        fusion.first_ranks(scores, np.array([5, 2]), np.array([0, 1, 2]))


# ----------------------------------------------------------------------------- Sec. 3.3


def test_sixteen_blur_levels_from_0_to_1_and_sigma_0_is_the_identity():
    sigmas = paper_sigmas()
    assert len(sigmas) == 16 and sigmas[0] == 0.0 and sigmas[-1] == 1.0
    image = torch.rand(3, 9, 9)
    assert torch.equal(blur(image, 0.0), image)
    assert float(blur(image, 1.0).std()) < float(image.std())


def test_size_batches_group_equal_sizes():
    sizes = [(8, 8), (9, 9), (8, 8), (8, 8), (9, 9)]
    assert size_batches(sizes, 2) == [[0, 2], [3], [1, 4]]


# ----------------------------------------------------------------------------- the chapter's rows


def _bank() -> "g5.Bank":
    """Two subjects, one probe each, one scale (x2) with two blur hypotheses and gallery hypotheses
    (undegraded, one degraded), built so that each row's decision is known by hand."""
    e = np.eye(4, dtype=np.float32)
    gallery = np.stack([e[0], e[1]])  # mugshots resized to the input
    # probe 0 (subject 0): unblurred SR hypothesis looks like subject 1, the blurred one like subject 0
    # probe 1 (subject 1): both hypotheses look like subject 0 against the plain mugshots ...
    probes = np.stack([[e[1] + 0.1 * e[0], e[0]], [e[0] + 0.1 * e[1], e[0] + 0.2 * e[1]]])
    # ... but its degraded hypothesis of mugshot 1 matches it (e[0] + 0.2 e[1] direction)
    degraded = np.stack([[e[0], e[2]], [e[1], e[0] + 0.25 * e[1]]])
    return g5.Bank(baseline=np.stack([e[1], e[1]]), gallery=gallery, probes={2: probes}, degraded={(2, (8, 8)): degraded},
                   keys=[(8, 8), (8, 8)], probe_labels=np.array([0, 1]), gallery_labels=np.array([0, 1]))


def test_table2_rows_are_the_paper_blocks_on_the_same_templates():
    hits = g5.table2_hits(_bank(), [2])
    assert hits[g5.BASELINE].tolist() == [0, 1]  # both baseline probes look like subject 1
    assert hits["+Single Hypothesis SR 2x"].tolist() == [0, 0]  # sigma-0 hypotheses only
    assert hits["+Multi Hypothesis SR 2x"].tolist() == [1, 0]  # S_max over the blur levels rescues probe 0
    assert hits["+Resolution Matching 2x"].tolist() == [1, 0]  # the undegraded RM'd hypothesis only
    assert hits["+Gallery Degradations 2x"].tolist() == [1, 1]  # the degraded mugshot-1 hypothesis rescues probe 1


def test_sample_chains_and_rm_keys():
    picked = g5.sample_chains(5, seed=3)
    assert picked[0] == () and len(picked) == 6 and len(set(picked)) == 6
    assert picked == g5.sample_chains(5, seed=3) and picked != g5.sample_chains(5, seed=4)
    assert len(g5.sample_chains(None)) == 1464
    assert g5.rm_key((13, 13), [14, 16, 18]) == (14, 14) and g5.rm_key((15, 15), [14, 16, 18]) == (14, 14)
    assert g5.rm_key((11, 12), None) == (11, 12)


def test_edsr_with_bicubic_skip_starts_as_bicubic_interpolation():
    from lrfr.data.degrade import resize
    from lrfr.models.sr import EDSR

    images = torch.rand(2, 3, 10, 12) * 2 - 1
    for scale in (2, 8):
        untrained = EDSR(scale=scale, blocks=1, channels=8, bicubic_skip=True)
        assert torch.equal(untrained(images), resize(images, (10 * scale, 12 * scale)))
    plain = EDSR(scale=2, blocks=1, channels=8)
    assert plain(images).shape == (2, 3, 20, 24) and not torch.allclose(plain(images), resize(images, (20, 24)), atol=1e-3)


def test_rrssv_draws_subjects_and_ranks_within_them():
    # 4 subjects, one probe each; probe i's best mugshot is i, except probe 0 whose best is mugshot 3
    similarity = np.eye(4) * 0.9
    similarity[0, 3] = 1.0
    labels = np.arange(4)
    rates = g5.rrssv(similarity, labels, labels, subjects=4, repeats=3)
    assert rates.tolist() == [75.0] * 3  # all subjects: probe 0 wrong
    small = g5.rrssv(similarity, labels, labels, subjects=2, repeats=50, seed=1)
    # a draw without subject 3 (or without 0) has every probe right; with both 0 and 3 it has 1 of 2
    assert set(small.tolist()) <= {100.0, 50.0} and {100.0, 50.0} <= set(small.tolist())


def test_bench_hypotheses_prints_one_line_per_stage(capsys):
    import json

    from lrfr.cli import main

    main(["bench", "hypotheses", "--probes", "3", "--gallery", "2", "--hypotheses", "2", "--chains", "1",
          "--probe-size", "8", "--scale", "2", "--input-size", "32", "--batch-size", "4"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["bench"] for line in lines] == ["hypotheses"] * 3
    probe, gallery, fuse = lines
    assert probe["templates"] == 3 * 2 and gallery["templates"] == 2 * 2 and fuse["score_pairs"] == 6 * 4
    assert probe["templates_per_s"] > 0 and gallery["templates_per_s"] > 0

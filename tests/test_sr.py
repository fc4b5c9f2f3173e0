"""Super-resolution networks, pixel loss, PSNR/SSIM, LR/HR pairs and VDSR's adjustable clipping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lrfr.data.base import FaceDataset, FaceRecord
from lrfr.data.degrade import resize, synthetic_lr
from lrfr.data.lr_pairs import LRPairs
from lrfr.losses import pixel_loss
from lrfr.models.sr import DRRN, EDSR, SR_NETWORKS, VDSR, SRThenFR, build_sr_network
from lrfr.models import build_backbone
from lrfr.protocols.fidelity import gaussian_window, psnr, ssim
from lrfr.training.optim import clip_gradients_adjustable

SMALL = {"srcnn": {"channels": (8, 4)}, "vdsr": {"depth": 4, "channels": 8}, "drrn": {"units": 2, "channels": 8}}


def smooth_faces(count: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
    """(count, 3, size, size) smooth random images in [-1, 1] (low-frequency noise, upsampled)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 6, 6, generator=generator) * 2 - 1
    return resize(coarse, size)


@pytest.mark.parametrize("name", ["srcnn", "vdsr", "drrn"])
@pytest.mark.parametrize("scale", [1, 2, 2.5, 3, 4, 8])
def test_pre_upsampling_networks_give_scale_times_the_input(name, scale):
    network = build_sr_network(name, scale=scale, **SMALL[name])
    out = network(torch.rand(2, 3, 12, 10) * 2 - 1)
    assert out.shape == (2, 3, round(12 * scale), round(10 * scale))


@pytest.mark.parametrize("name", ["srcnn", "vdsr", "drrn"])
def test_pre_upsampling_networks_honour_a_fixed_or_requested_size(name):
    fixed = build_sr_network(name, output_size=(40, 32), **SMALL[name])
    assert fixed(torch.zeros(1, 3, 9, 7)).shape == (1, 3, 40, 32)
    assert fixed(torch.zeros(1, 3, 40, 32)).shape == (1, 3, 40, 32)  # already interpolated: restored as is
    assert fixed(torch.zeros(1, 3, 9, 7), size=24).shape == (1, 3, 24, 24)


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_edsr_upsamples_by_its_factor(scale):
    network = EDSR(scale=scale, blocks=2, channels=8)
    assert network(torch.zeros(2, 3, 7, 5)).shape == (2, 3, 7 * scale, 5 * scale)
    assert network.output_size((7, 5)) == (7 * scale, 5 * scale)


@pytest.mark.parametrize("scale", [5, 6, 12])
def test_edsr_refuses_factors_it_cannot_build(scale):
    with pytest.raises(ValueError, match="2, 3, 4, 8"):
        EDSR(scale=scale, blocks=1, channels=8)


def test_sr_networks_reject_bad_input_and_settings():
    with pytest.raises(ValueError, match=r"\(B, 3, h, w\)"):
        VDSR(depth=3, channels=4)(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="scale must be a number >= 1"):
        VDSR(scale=0.5)
    with pytest.raises(ValueError, match="depth"):
        VDSR(depth=1)
    assert set(SR_NETWORKS.names()) >= {"srcnn", "vdsr", "drrn", "edsr"}


def test_vdsr_adds_its_residual_to_the_interpolated_input():
    torch.manual_seed(0)
    network = VDSR(depth=5, channels=8, scale=2)
    lr = smooth_faces(2, 16)
    interpolated = resize(lr, 32)
    out = network(lr)
    assert torch.allclose(out - interpolated, network.residual(interpolated), atol=1e-6)
    assert not torch.allclose(out, interpolated, atol=1e-3)  # the residual branch is not a no-op
    last = network.residual[-1]
    torch.nn.init.zeros_(last.weight), torch.nn.init.zeros_(last.bias)
    assert torch.equal(network(lr), interpolated)  # zero residual: exactly the bicubic interpolation
    assert len([m for m in network.modules() if isinstance(m, torch.nn.Conv2d)]) == 5


def test_vdsr_default_is_the_papers_twenty_layers_of_64_filters():
    convs = [m for m in VDSR().modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 20 and all(c.kernel_size == (3, 3) for c in convs)
    assert [c.out_channels for c in convs] == [64] * 19 + [3]


def test_drrn_shares_the_residual_unit_weights_across_recursions():
    network = DRRN(blocks=2, units=3, channels=8, scale=2)
    assert network.depth == (1 + 2 * 3) * 2 + 1
    assert DRRN().depth == 52  # DRRN_B1U25, the paper's model
    for block in network.blocks:
        assert len(block.activations1) == 3  # one BN per recursion, but the two unit convs are shared
    convs = [m for m in network.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2 * 3 + 1  # entry + 2 shared unit convs per block, one reconstruction conv
    block = network.blocks[0]
    x = torch.randn(1, 3, 6, 6)
    h0 = block.entry(block.entry_activation(x))
    h = h0
    for first, second in zip(block.activations1, block.activations2):
        h = block.conv2(second(block.conv1(first(h)))) + h0
    assert torch.allclose(block(x), h)


@pytest.mark.parametrize("name", ["srcnn", "vdsr", "drrn", "edsr"])
def test_a_few_steps_on_one_batch_raise_psnr(name):
    torch.manual_seed(0)
    hr = smooth_faces(4, 32)
    if name == "edsr":
        network, lr = EDSR(scale=2, blocks=2, channels=16), synthetic_lr(hr, 16)
    else:
        network, lr = build_sr_network(name, scale=2, **SMALL[name]), synthetic_lr(hr, 16)
    network.train()
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    with torch.no_grad():
        network.eval()
        before = psnr(network(lr), hr).mean()
        network.train()
    for _ in range(60):
        loss = pixel_loss(network(lr), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    network.eval()
    with torch.no_grad():
        after = psnr(network(lr), hr).mean()
    assert after > before + 1.0, (name, before, after)


def test_pixel_loss_mean_and_per_image_sum():
    restored, target = torch.zeros(2, 3, 4, 5), torch.zeros(2, 3, 4, 5)
    restored[0] += 0.5  # image 0: every element off by 0.5; image 1 exact
    assert pixel_loss(restored, target).item() == pytest.approx(0.125)  # mean of 0.25 over half the elements
    assert pixel_loss(restored, target, reduction="sum").item() == pytest.approx(0.25 * 60 / 2)
    assert pixel_loss(restored, target, "l1").item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="shape"):
        pixel_loss(restored, target[:, :, :3])
    with pytest.raises(ValueError, match="one of"):
        pixel_loss(restored, target, "l3")


def test_psnr_known_answers():
    target = torch.zeros(2, 3, 8, 8)  # grey 0.5 in [0, 1]
    restored = target.clone()
    restored[0] += 0.2  # +0.1 in [0, 1] everywhere: MSE 0.01 -> 20 dB
    values = psnr(restored, target)
    assert values[0].item() == pytest.approx(20.0, abs=1e-4)
    assert math.isinf(values[1].item())
    y = psnr(restored, target, y_channel=True)  # Y of a uniform +0.1 grey shift: (65.481+128.553+24.966)/255 * 0.1
    assert y[0].item() == pytest.approx(-20 * math.log10(219 / 255 * 0.1), abs=1e-3)


def test_ssim_of_constant_images_is_the_luminance_term():
    a, b = 0.3, 0.7  # in [0, 1]
    restored, target = torch.full((1, 3, 16, 16), 2 * a - 1), torch.full((1, 3, 16, 16), 2 * b - 1)
    c1 = 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # contrast-structure term (0 + C2) / (0 + C2) = 1
    assert ssim(restored, target).item() == pytest.approx(expected, rel=1e-6)
    assert ssim(target, target).item() == pytest.approx(1.0)


def test_ssim_on_one_window_matches_the_weighted_moments_formula():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (11, 11)), rng.uniform(0, 1, (11, 11))
    w = gaussian_window().numpy()
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum()
    cov = (w * (x - mx) * (y - my)).sum()
    c1, c2 = 0.01**2, 0.03**2
    expected = (2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    as_image = lambda v: torch.from_numpy(np.stack([v] * 3))[None].float() * 2 - 1  # noqa: E731
    assert ssim(as_image(x), as_image(y)).item() == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="at least 11 px"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_adjustable_clipping_bounds_each_element_by_theta_over_the_learning_rate():
    parameter = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    parameter.grad = torch.tensor([10.0, -10.0, 0.05])
    clip_gradients_adjustable(optimizer, theta=0.01)  # bound 0.01 / 0.1 = 0.1
    assert torch.allclose(parameter.grad, torch.tensor([0.1, -0.1, 0.05]))
    optimizer.param_groups[0]["lr"] = 0.001  # the bound loosens as the rate decays: 10
    parameter.grad = torch.tensor([20.0, -5.0, 0.05])
    clip_gradients_adjustable(optimizer, theta=0.01)
    assert torch.allclose(parameter.grad, torch.tensor([10.0, -5.0, 0.05]))


def _face_dataset(tmp_path, count: int = 3, size: int = 24) -> FaceDataset:
    from PIL import Image

    images = ((smooth_faces(count, size) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    records = []
    for i, image in enumerate(images):
        path = tmp_path / f"{i}.png"
        Image.fromarray(image).save(path)
        records.append(FaceRecord(path, i % 2, str(i % 2), "train"))
    return FaceDataset(records, size)


def test_lr_pairs_degrade_the_hr_face_and_keep_its_label(tmp_path):
    base = _face_dataset(tmp_path)
    pairs = LRPairs(base, lr_sizes=8)
    item = pairs[1]
    assert item["hr"].shape == item["lr"].shape == (3, 24, 24) and int(item["label"]) == 1
    assert torch.equal(item["hr"], base[1]["image"])
    assert torch.allclose(item["lr"], synthetic_lr(item["hr"], 8, upsample_to=24))
    small = LRPairs(base, lr_sizes=6, upsample=False)[0]
    assert small["lr"].shape == (3, 6, 6) and small["hr"].shape == (3, 24, 24)
    assert pairs.num_classes == 2


def test_lr_pairs_crop_the_same_window_and_draw_sizes_from_the_list(tmp_path):
    base = _face_dataset(tmp_path)
    torch.manual_seed(0)
    pairs = LRPairs(base, lr_sizes=[6, 12], patch=10)
    sizes = {int(pairs[0]["lr_size"]) for _ in range(20)}
    assert sizes == {6, 12}
    torch.manual_seed(1)
    item = pairs[2]
    full = {size: synthetic_lr(base[2]["image"], size, upsample_to=24) for size in (6, 12)}
    windows = [
        (top, left) for top in range(15) for left in range(15)
        if torch.equal(base[2]["image"][:, top:top + 10, left:left + 10], item["hr"])
    ]
    assert windows and any(
        torch.allclose(full[int(item["lr_size"])][:, t:t + 10, l:l + 10], item["lr"]) for t, l in windows
    )
    with pytest.raises(ValueError, match="one lr_size and no patch"):
        LRPairs(base, lr_sizes=[6, 12], upsample=False)


def test_sr_then_fr_feeds_the_backbone_its_input_size():
    backbone = build_backbone("quick", input_size=32, embedding_size=16)
    pipeline = SRThenFR(VDSR(depth=3, channels=4), backbone).eval()
    assert pipeline(torch.zeros(2, 3, 11, 11)).shape == (2, 16)  # any LR size: interpolated to 32
    assert pipeline.super_resolve(torch.zeros(1, 3, 11, 11)).shape == (1, 3, 32, 32)
    edsr = SRThenFR(EDSR(scale=4, blocks=1, channels=4), backbone).eval()
    assert edsr(torch.zeros(1, 3, 8, 8)).shape == (1, 16)
    with pytest.raises(ValueError, match="1/4 of that size"):
        edsr(torch.zeros(1, 3, 10, 10))

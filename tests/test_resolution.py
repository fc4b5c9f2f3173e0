"""Resolution augmentations (Ling et al. 2023, Sec. 3.1), paired HR/LR items and batches, and the
gradient norm per input resolution (Fig. 3b)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from lrfr.data.degrade import synthetic_lr
from lrfr.data.lr_pairs import LRPairs, load_lr_pairs
from lrfr.data.resolution import (
    ResolutionAugmentation,
    down_up,
    lr_pairs_kwargs,
    maug,
    maug_reference,
    paug,
    resolution_augmentation,
)
from lrfr.losses import build_head
from lrfr.models import build_backbone
from lrfr.experiments.maug import total_loss_terms
from lrfr.protocols.gradient_norm import gradient_norm_by_resolution, gradient_norm_by_term
from lrfr.training import (
    HeadSpec, LossTerm, ModelSpec, Objective, OptimizerConfig, StepContext, TrainConfig, Trainer, build_objective,
    seed_everything,
)
from tests.toy import ToyFaces

DRAWS = 20_000


def drawn_counts(augmentation: ResolutionAugmentation, sizes: tuple[int, ...], seed: int = 0) -> np.ndarray:
    drawn = augmentation.draw(DRAWS, generator=torch.Generator().manual_seed(seed)).numpy()
    return np.array([(drawn == size).sum() for size in sizes])


def chi_square_p(counts: np.ndarray, ratio: tuple[float, ...]) -> float:
    expected = np.asarray(ratio, dtype=float) / sum(ratio) * counts.sum()
    keep = expected > 0
    assert counts[~keep].sum() == 0  # a size of weight 0 is never drawn
    return float(stats.chisquare(counts[keep], expected[keep]).pvalue)


def test_maug_draws_7_14_20_px_at_1_1_2():
    counts = drawn_counts(maug(), (7, 14, 20))
    assert counts.sum() == DRAWS
    assert chi_square_p(counts, (1, 1, 2)) > 0.001
    assert chi_square_p(counts, (1, 1, 1)) < 1e-6  # the test can tell 1:1:2 from 1:1:1


def test_the_ratio_is_a_parameter_and_the_reference_codes_draw_is_50_0_50():
    assert chi_square_p(drawn_counts(maug((2, 1, 1)), (7, 14, 20), seed=1), (2, 1, 1)) > 0.001
    reference = drawn_counts(maug_reference(), (7, 14, 20), seed=2)
    assert reference[1] == 0 and chi_square_p(reference, (1, 0, 1)) > 0.001
    assert chi_square_p(reference, (1, 1, 2)) < 1e-6  # 14 px is never drawn: not the paper's ratio


def test_paug_draws_the_four_st_m_sizes_equally():
    counts = drawn_counts(paug(), (7, 14, 28, 56), seed=3)
    assert chi_square_p(counts, (1, 1, 1, 1)) > 0.001


def paired(base, spec) -> LRPairs:
    return LRPairs(base, **lr_pairs_kwargs(spec))


def test_paired_items_hold_the_hr_image_and_its_lr_copy_at_the_drawn_size():
    base = ToyFaces(per_class=8, size=64)
    pairs = paired(base, {"name": "maug"})
    torch.manual_seed(0)
    sizes = []
    for index in range(len(pairs)):
        item = pairs[index]
        size = int(item["lr_size"])
        sizes.append(size)
        torch.testing.assert_close(item["hr"], base[index]["image"])
        torch.testing.assert_close(item["lr"], synthetic_lr(item["hr"], size, upsample_to=64))
        assert item["label"] == base[index]["label"] and "image" not in item
        assert (item["lr"] - item["hr"]).abs().mean() > 0.05  # detail is gone
    assert set(sizes) == {7, 14, 20} and pairs.num_classes == base.num_classes


def test_paired_dataset_draws_follow_the_ratio_through_items():
    pairs = paired(ToyFaces(num_classes=2, per_class=500, size=32), maug((1, 2, 1)))
    torch.manual_seed(1)
    counts = np.bincount([int(pairs[i]["lr_size"]) for i in range(len(pairs))], minlength=21)[[7, 14, 20]]
    assert chi_square_p(counts, (1, 2, 1)) > 0.001


class RecordBatch(LossTerm):
    """A zero loss that keeps each step's batch (and lets the backbone learn nothing)."""

    def __init__(self) -> None:
        super().__init__("record")
        self.batches: list[dict[str, torch.Tensor]] = []

    def forward(self, ctx: StepContext) -> torch.Tensor:
        self.batches.append({k: ctx.input(f"main.{k}").clone() for k in ("hr", "lr", "lr_size", "label", "index")})
        return ctx.embed("main.hr").embedding.sum() * 0


def test_training_batches_pair_each_hr_face_with_its_own_lr_copy():
    seed_everything(0)
    base = ToyFaces(num_classes=5, per_class=8, size=32)
    objective = Objective(build_backbone("quick"), {}, [RecordBatch()])
    config = TrainConfig(epochs=2, batch_size=8, progress=False, device="cpu", optimizer=OptimizerConfig(lr=1e-3))
    Trainer(config, objective, {"main": _Indexed(paired(base, "paug"))}).fit()
    batches = objective.terms[0].batches
    assert len(batches) == 10
    for batch in batches:
        assert torch.equal(batch["label"], base.labels[batch["index"]])  # one identity per row
        for hr, lr, size, index in zip(batch["hr"], batch["lr"], batch["lr_size"], batch["index"]):
            torch.testing.assert_close(hr, base[int(index)]["image"])
            torch.testing.assert_close(lr, down_up(hr, int(size)))


class _Indexed(torch.utils.data.Dataset):
    """Adds the item index, so the test can tell which face each row of a batch is."""

    def __init__(self, base: LRPairs) -> None:
        self.base, self.num_classes = base, base.num_classes

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {**self.base[index], "index": torch.tensor(index)}


def test_named_augmentations_and_errors():
    assert resolution_augmentation("aug").sizes == (14,)
    assert resolution_augmentation({"name": "single", "size": 28}).sizes == (28,)
    assert resolution_augmentation({"sizes": [8, 16], "weights": [3, 1]}).probabilities == (0.75, 0.25)
    with pytest.raises(ValueError, match="unknown resolution augmentation 'maugg'"):
        resolution_augmentation("maugg")
    with pytest.raises(ValueError, match="weights .* must be >= 0 with a positive sum"):
        ResolutionAugmentation((7, 14), (0.0, 0.0))
    item = paired(ToyFaces(size=32), {"name": "single", "size": 56})[0]
    assert torch.equal(item["lr"], item["hr"]) and item["lr_size"] == 56  # nothing to lose at a 32-px input
    assert lr_pairs_kwargs("maug_reference") == {"lr_sizes": [7, 14, 20], "weights": [0.5, 0.0, 0.5]}
    with pytest.raises(ValueError, match="keep_in_memory needs a FaceDataset"):
        load_lr_pairs("tests.toy:make_toy", lr_sizes=[7, 14])


def test_down_up_batches_and_leaves_sizes_at_or_above_the_input():
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(down_up(images, 8)[1], synthetic_lr(images[1], 8, upsample_to=32))
    assert down_up(images, 32) is images and down_up(images, 64) is images


def test_gradient_norm_per_resolution_is_the_norm_sum_of_the_mean_loss_gradient():
    seed_everything(0)
    backbone = build_backbone("quick", embedding_size=16)
    head = build_head("cosface", embedding_size=16, num_classes=4)
    objective = Objective(backbone, {"main": head}, [RecordBatch()])
    faces = ToyFaces(per_class=4, size=32)
    images, labels = torch.stack([faces[i]["image"] for i in range(16)]), faces.labels[:16]
    before = {k: v.clone() for k, v in objective.state_dict().items()}
    norms = gradient_norm_by_resolution(objective, images, labels, (8, 32), batch_size=5)
    assert all(torch.equal(v, objective.state_dict()[k]) for k, v in before.items())  # no buffer moved
    assert all(p.grad is None for p in objective.parameters())
    objective.eval()
    for size in (8, 32):
        loss = head(backbone(down_up(images, size)), labels).terms["ce"]
        gradients = torch.autograd.grad(loss, [p for p in backbone.parameters() if p.requires_grad])
        assert norms[size] == pytest.approx(float(sum(g.norm() for g in gradients)), rel=1e-4)
    total = gradient_norm_by_resolution(objective, images, labels, (8,), reduction="total")[8]
    assert total < norms[8]


def test_gradient_norm_by_term_separates_the_terms_of_eq8():
    seed_everything(0)
    spec = ModelSpec(backbone="quick", backbone_kwargs={"embedding_size": 16},
                     heads={"main": HeadSpec("cosface", 4, {"scale": 48.0, "margin": 0.4})},
                     terms=total_loss_terms("logexp", 1.0, 3.0))
    objective = build_objective(spec)
    data = ToyFaces(per_class=4)
    batch = {f"main.{k}": torch.stack([data[i][k] for i in range(8)]) for k in ("hr", "lr", "label")}
    norms = gradient_norm_by_term(objective, batch)
    assert set(norms) == {"cls_hr/ce", "cls_lr/ce", "dist"} and all(p.grad is None for p in objective.parameters())
    objective.eval()
    parameters = [p for p in objective.backbone.parameters() if p.requires_grad]
    gradients = torch.autograd.grad(objective(batch)["dist"], parameters)
    assert norms["dist"] == pytest.approx(float(torch.cat([g.flatten() for g in gradients]).norm()), rel=1e-4)
    objective.train()
    gradient_norm_by_term(objective, batch)
    assert objective.training and objective.backbone.training

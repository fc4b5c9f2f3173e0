"""Ling et al. 2023 in lrfr: the total loss (Eq. 7-8) as composed terms, methods and the paper's settings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lrfr.data import DATASETS
from lrfr.experiments.maug import (
    PAPER_SETTINGS, Method, Setting, method_config, ratio_methods, table4_methods, total_loss_terms,
)
from lrfr.losses import logexp_distance, lp_distance
from lrfr.training import HeadSpec, ModelSpec, build_objective, run_experiment, seed_everything
from tests.fixtures_data import write_image
from tests.toy import ToyFaces


@pytest.mark.parametrize(("distance", "p", "lam"), [("logexp", 1.0, 1.0), ("logexp", 2.0, 5.0), ("lp", 1.0, 1.0)])
def test_total_loss_is_lambda_distance_plus_half_of_each_classification_loss(distance, p, lam):
    seed_everything(0)
    spec = ModelSpec(backbone="quick", backbone_kwargs={"embedding_size": 32},
                     heads={"main": HeadSpec("cosface", 4, {"scale": 48.0, "margin": 0.4})},
                     terms=total_loss_terms(distance, p, lam))
    objective = build_objective(spec).eval()
    data = ToyFaces(per_class=4)
    batch = {f"main.{k}": torch.stack([data[i][k] for i in range(8)]) for k in ("hr", "lr", "label")}
    with torch.no_grad():
        terms = objective(batch)
        hr, lr = objective.backbone(batch["main.hr"]), objective.backbone(batch["main.lr"])
        head, labels = objective.heads["main"], batch["main.label"]
        cosface = lambda f: F.cross_entropy(48.0 * (F.normalize(f) @ F.normalize(head.weight).T  # noqa: E731
                                                    - 0.4 * F.one_hot(labels, 4)), labels)
        function = logexp_distance if distance == "logexp" else lp_distance
        expected_distance = function(F.normalize(hr), F.normalize(lr), p).mean()
    assert set(terms) == {"cls_hr/ce", "cls_lr/ce", "dist"}
    torch.testing.assert_close(terms["cls_hr/ce"], 0.5 * cosface(hr))
    torch.testing.assert_close(terms["cls_lr/ce"], 0.5 * cosface(lr))
    torch.testing.assert_close(terms["dist"], lam * expected_distance)


def test_rows_without_a_distance_keep_the_two_classification_halves():
    assert [t.name for t in total_loss_terms(None)] == ["cls_hr", "cls_lr"]
    assert [t.name for t in total_loss_terms("logexp", lam=0.0)] == ["cls_hr", "cls_lr"]
    with pytest.raises(ValueError, match="not one of Ling et al.'s"):
        total_loss_terms("cosine")
    with pytest.raises(ValueError, match="needs LR copies"):
        Method(None, "logexp")


def test_table_rows_and_the_reference_codes_ratio():
    rows = table4_methods()
    assert list(rows)[:4] == ["Baseline", "Aug", "MAug", "PAug+Ours(1)"] and len(rows) == 10
    assert rows["MAug+Ours(2)"] == Method("maug", "logexp", 2.0)
    ratios = ratio_methods()
    assert ratios["1:1:2"].augmentation == {"name": "maug", "ratio": [1.0, 1.0, 2.0]}
    assert ratios["reference code (50/0/50)"].augmentation == "maug_reference"


def test_paper_settings_are_section_4_1():
    casia, ms1m = PAPER_SETTINGS["resnet34_casia"], PAPER_SETTINGS["resnet50_ms1m"]
    config = method_config("maug", table4_methods()["MAug+Ours(1)"], casia, "/data")
    assert (config.model.backbone, config.model.backbone_kwargs) == ("resnet34", {"input_size": 112, "embedding_size": 512})
    assert (config.train.optimizer.lr, config.train.optimizer.momentum, config.train.optimizer.weight_decay) == (0.1, 0.9, 5e-4)
    assert (config.train.epochs, config.train.schedule.milestones, config.train.batch_size) == (28, [16, 24], 256)
    assert config.model.heads["main"].kind == "cosface" and config.model.heads["main"].kwargs == {"scale": 48.0, "margin": 0.4}
    assert config.data["main"].kwargs["root"] == "/data/casia_webface" and config.data["main"].name == "lr_pairs"
    assert (config.data["main"].kwargs["lr_sizes"], config.data["main"].kwargs["weights"]) == ([7, 14, 20], [1.0, 1.0, 2.0])
    assert (ms1m.backbone, ms1m.lr, ms1m.epochs, ms1m.milestones) == ("resnet50", 0.01, 16, (8, 12))


def test_a_paired_method_and_the_baseline_train_from_a_folder(tmp_path):
    for identity in range(4):
        for image in range(4):
            write_image(tmp_path / "data" / "hr" / f"id{identity}" / f"{image}.jpg", 48, 48, seed=identity * 10 + image)
    setting = Setting(backbone="quick", input_size=32, embedding_size=16, dataset="folder", folder="hr",
                      keep_in_memory=True, epochs=1, batch_size=8, lr=0.01, images_per_identity=2)
    paired = method_config("maug-logexp", Method("maug", "logexp", 1.0), setting, tmp_path / "data")
    config = paired.__class__.from_dict({**paired.to_dict(), "train": {**paired.to_dict()["train"], "progress": False}})
    run, _ = run_experiment(config, tmp_path / "results")
    assert {"cls_hr/ce", "cls_lr/ce", "dist"} <= set(run.metrics()["train_history"][0])
    spec = config.data["main"]
    assert len(DATASETS.build(spec.name, **spec.kwargs)) == 8  # 4 identities x 2 images (per_identity)
    baseline = method_config("baseline", Method(), setting, tmp_path / "data")
    assert baseline.data["main"].name == "in_memory" and [t.name for t in baseline.model.terms] == ["cls"]
    finetune = method_config("ft", Method("aug"), Setting(pretrained=str(run.path), warm_start_head=True), "/data")
    assert finetune.model.pretrained_modules == ["backbone", "heads"]

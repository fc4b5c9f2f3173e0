"""A backbone cut into a frozen prefix and a trainable tail (lrfr.models.tail), the prefix maps of faces
computed once (lrfr.experiments.frozen_body) and served as paired training items (feature_pairs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lrfr.data import DATASETS
from lrfr.data.base import FaceDataset
from lrfr.data.feature_pairs import FeaturePairs
from lrfr.data.resolution import down_up
from lrfr.experiments.frozen_body import FeatureBank, features_file
from lrfr.experiments.maug import Method, Setting, embed_at, method_config, term_gradient_norms, whole_model
from lrfr.experiments.workflow import cached_run, whole_backbone
from lrfr.models import build_backbone
from lrfr.models.tail import split_backbone, tail_modules, with_tail
from tests.fixtures_data import write_image


def small_backbone() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_backbone("quick", input_size=32, embedding_size=8, widths=[4, 8, 8], blocks=[1, 1, 1]).eval()


@pytest.mark.parametrize("start", ["head", "stage2"])
def test_the_tail_of_the_prefix_is_the_backbone(start):
    backbone, images = small_backbone(), torch.randn(3, 3, 32, 32)
    prefix, tail = split_backbone(backbone, start)
    with torch.no_grad():
        torch.testing.assert_close(tail(prefix(images)), backbone(images))
    assert tail_modules(tail) == (["head"] if start == "head" else ["body.stage2", "body.stage3", "head"])
    with pytest.raises(ValueError, match="expected one of \\['head', 'stem', 'stage1'"):
        split_backbone(backbone, "stage9")


def test_a_trained_tail_goes_back_on_the_backbone():
    backbone, images = small_backbone(), torch.randn(2, 3, 32, 32)
    prefix, tail = split_backbone(small_backbone(), "head")
    with torch.no_grad():
        tail.head[3].weight.mul_(-2.0)  # the tail's linear layer, changed
        whole = with_tail(backbone, tail)
        torch.testing.assert_close(whole(images), tail(prefix(images)))
        assert not torch.equal(whole(images), backbone(images))  # the original backbone is left as it was


def write_faces(root, identities=3, images=3):
    for identity in range(identities):
        for image in range(images):
            write_image(root / f"id{identity}" / f"{image}.jpg", 40, 40, seed=identity * 10 + image)


def test_features_file_holds_each_faces_prefix_map_at_each_size_and_is_reused(tmp_path):
    write_faces(tmp_path / "hr")
    prefix, _ = split_backbone(small_backbone(), "head")
    data = {"dataset": "folder", "root": str(tmp_path / "hr"), "input_size": 32}
    path = features_file(prefix, {"run": "r"}, data, [7, 14], tmp_path / "results")
    faces = FaceDataset(DATASETS.build("folder", root=str(tmp_path / "hr"), input_size=32).records, 32)
    images = torch.stack([faces[i]["image"] for i in range(len(faces))])
    pairs = DATASETS.build("feature_pairs", path=str(path), lr_sizes=[7, 14], weights=[1.0, 0.0])
    with torch.no_grad():
        torch.testing.assert_close(pairs.features["size_7"], prefix(down_up(images, 7)))
        torch.testing.assert_close(pairs.features["hr"], prefix(images))
    item = pairs[4]
    assert int(item["lr_size"]) == 7 and int(item["label"]) == 1  # weight 0: 14 px is never drawn
    torch.testing.assert_close(item["lr"], pairs.features["size_7"][4])
    stamp = path.stat().st_mtime_ns
    assert features_file(prefix, {"run": "r"}, data, [14, 7], tmp_path / "results") == path and path.stat().st_mtime_ns == stamp
    assert features_file(prefix, {"run": "other"}, data, [7, 14], tmp_path / "results") != path
    with pytest.raises(ValueError, match="features-.*no maps \\['size_20'\\]"):
        DATASETS.build("feature_pairs", path=str(path), lr_sizes=[20])


def test_feature_pairs_draw_sizes_at_their_weights():
    maps = {"hr": torch.zeros(4000, 1), "size_7": torch.full((4000, 1), 7.0), "size_20": torch.full((4000, 1), 20.0)}
    pairs = FeaturePairs(maps, torch.arange(4000) % 5, [7, 20], [1.0, 3.0])
    torch.manual_seed(0)
    drawn = np.array([int(pairs[i]["lr_size"]) for i in range(4000)])
    assert abs((drawn == 20).mean() - 0.75) < 0.03 and pairs.num_classes == 5
    assert set(FeaturePairs(maps, torch.arange(4000), [])[0]) == {"image", "label"}


def test_the_bank_embeds_faces_as_the_whole_backbone_does(tmp_path):
    write_faces(tmp_path)
    backbone = small_backbone()
    prefix, tail = split_backbone(backbone, "head")
    records = DATASETS.build("folder", root=str(tmp_path), input_size=32).records
    bank = FeatureBank(prefix, 32)
    bank.add(records, [None, 7])
    np.testing.assert_allclose(bank.embed(tail, records[2:5], 7), embed_at(backbone, records[2:5], 7), atol=1e-5)
    np.testing.assert_allclose(bank.embed(tail, records, None), embed_at(backbone, records), atol=1e-5)
    assert len(bank.maps) == 2 * len(records)  # each face once per size


def test_a_method_trains_the_tail_on_prefix_maps_with_fixed_prototypes(tmp_path):
    write_faces(tmp_path / "data" / "hr", identities=4, images=4)
    pretrained = Setting(backbone="quick", input_size=32, embedding_size=8, dataset="folder", folder="hr", epochs=1,
                         batch_size=8, lr=0.01, backbone_kwargs={"widths": [4, 8, 8], "blocks": [1, 1, 1]})
    start, start_model = cached_run(method_config("pre", Method(), pretrained, tmp_path / "data"), tmp_path / "results")
    setting = Setting(**{**pretrained.__dict__, "pretrained": str(start.path), "warm_start_head": True,
                         "train_from": "head", "freeze_prototypes": True, "images_per_identity": 2})
    prefix, _ = split_backbone(start_model.backbone, "head")
    features = features_file(prefix, {"run": start.path.name}, {"dataset": "folder", "root": str(tmp_path / "data" / "hr"),
                                                               "input_size": 32}, [7, 14, 20], tmp_path / "results")
    config = method_config("maug", Method("maug", "logexp"), setting, tmp_path / "data", features)
    assert (config.model.backbone, config.model.freeze, config.data["main"].name) == ("tail", ["heads"], "feature_pairs")
    assert config.model.pretrained_modules == ["backbone.head", "heads"] and not config.data["main"].transforms
    run, model = cached_run(config, tmp_path / "results")
    torch.testing.assert_close(model.heads["main"].weight, start_model.heads["main"].weight)  # prototypes fixed
    assert not torch.equal(model.backbone.head[3].weight, start_model.backbone.head[3].weight)
    norms = term_gradient_norms(run, model, 8)
    assert set(norms) == {"cls_hr/ce", "cls_lr/ce", "dist"} and all(v > 0 for v in norms.values())
    whole = whole_model(model, start_model.backbone)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(F.normalize(whole.backbone(images)), F.normalize(model.backbone(prefix(images))))
        torch.testing.assert_close(whole_backbone(run.path)(images), whole.backbone(images))  # from the run folders
    with pytest.raises(ValueError, match="pass their features file"):
        method_config("maug", Method("maug"), setting, tmp_path / "data")

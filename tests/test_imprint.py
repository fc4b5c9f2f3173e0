"""Imprinted heads (lrfr.experiments.imprint): class means and the imprinted softmax / CentreFace head."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lrfr.experiments.imprint import SCALE, class_means, imprint
from lrfr.losses import build_head


class _Faces(torch.utils.data.Dataset):
    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"image": self.images[i], "label": self.labels[i]}


def _objective(backbone=None, sr=None):
    return SimpleNamespace(backbone=backbone or nn.Identity(), super_resolve=sr or (lambda x: x))


def test_class_means_average_each_class_and_the_norms():
    images = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    faces = _Faces(images, torch.tensor([0, 0, 1, 1]))
    means, norm = class_means(_objective(), faces, "image", 2, batch_size=3)  # two batches
    assert torch.allclose(means, torch.tensor([[2.0, 2.0], [0.0, 1.0]]))
    assert norm == pytest.approx((5 + 1 + 2 + 0) / 4)
    doubled, _ = class_means(_objective(sr=lambda x: 2 * x), faces, "image", 2, super_resolve=True)
    assert torch.allclose(doubled, 2 * means)  # the SR output is what is embedded
    with pytest.raises(ValueError, match="1 have none"):
        class_means(_objective(), faces, "image", 3)


def test_imprinted_centreface_head_scores_the_cosine_to_each_class_mean():
    head = build_head("centerface", embedding_size=2, num_classes=2)
    means = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    imprint(head, means, mean_norm=2.0)
    assert torch.allclose(head.classifier.weight, torch.tensor([[SCALE / 2, 0.0], [0.0, SCALE / 2]]))
    assert torch.equal(head.classifier.bias, torch.zeros(2)) and torch.equal(head.centers, means)
    x = torch.tensor([[1.0, 1.0]]) * 2 ** 0.5  # norm 2 = the mean norm, 45 degrees from both means
    assert torch.allclose(head.classifier(x), torch.full((1, 2), SCALE * 2 ** -0.5))


def test_imprinting_a_head_without_a_linear_classifier_is_an_error():
    with pytest.raises(ValueError, match="softmax head"):
        imprint(build_head("arcface", embedding_size=2, num_classes=2), torch.ones(2, 2), 1.0)

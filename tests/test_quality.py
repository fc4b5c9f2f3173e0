"""Quality scores compared with the RI (MagFace norm, ERS, CR-FIQA, SER-FIQ), by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from lrfr.protocols.quality import certainty_ratio, embedding_norm, ers_quality, ser_fiq, ui_center


def test_embedding_norm_by_hand():
    np.testing.assert_allclose(embedding_norm(np.array([[3, 4], [0, 0.5]], np.float32)), [5, 0.5])


def test_ui_center_is_the_renormalised_mean_of_normalised_rows():
    np.testing.assert_allclose(ui_center(np.array([[2, 0], [0, 1]], np.float32)), [np.sqrt(0.5)] * 2, rtol=1e-6)


def test_ers_quality_is_the_cosine_distance_to_the_center():
    quality = ers_quality(np.array([[2, 0], [0, 3], [-1, 0], [1, 1]], np.float32), np.array([1, 0], np.float32))
    np.testing.assert_allclose(quality, [0, 1, 2, 1 - np.sqrt(0.5)], atol=1e-6)


def test_certainty_ratio_by_hand():
    prototypes, prototype_labels = np.array([[1, 0], [0, 1]], np.float32), [7, 5]
    embeddings = np.array([[1, 0], [0.6, 0.8], [0.6, 0.8]], np.float32)
    # CCS / (NNCCS + 1 + 1e-9): 1 / (0 + 1), 0.6 / (0.8 + 1), 0.8 / (0.6 + 1)
    ratio = certainty_ratio(embeddings, [7, 7, 5], prototypes, prototype_labels)
    np.testing.assert_allclose(ratio, [1, 1 / 3, 1 / 2], rtol=1e-6)


class Toggle(nn.Module):
    """In train mode outputs (1, 0), (0, 1), (1, 0), ... on successive calls; in eval mode (1, 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, images: Tensor) -> Tensor:
        self.calls += self.training
        odd = self.training and self.calls % 2 == 0
        return torch.tensor([0.0, 1.0] if odd else [1.0, 0.0]).expand(len(images), 2)


def test_ser_fiq_by_hand():
    toggle = Toggle()
    model = nn.Sequential(nn.Flatten(), toggle).eval()
    images = torch.zeros(3, 1, 2, 2)
    # 4 passes: e1 e2 e1 e2 -> sum over i<j of distances = 4 * sqrt(2); q = 2 sigmoid(-(2/16) 4 sqrt(2))
    expected = 2 / (1 + math.exp(math.sqrt(2) / 2))  # 0.660479...
    np.testing.assert_allclose(ser_fiq(model, images, toggle, passes=4, batch_size=3), [expected] * 3, rtol=1e-6)
    assert not model.training and not toggle.training  # modes restored
    # passes that do not vary: all distances 0, q = 2 sigmoid(0) = 1
    np.testing.assert_allclose(ser_fiq(model, images, model[0], passes=5), [1, 1, 1])


def test_ser_fiq_with_real_dropout_is_seeded_and_in_range():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 16), nn.Dropout(0.5), nn.Linear(16, 8))
    images = torch.randn(6, 1, 2, 2)
    state = torch.get_rng_state()
    first = ser_fiq(model, images, model[2], passes=10, seed=1)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    np.testing.assert_array_equal(first, ser_fiq(model, images, [model[2]], passes=10, seed=1))
    assert ((first > 0) & (first < 1)).all()


def test_bad_input_is_named():
    model = nn.Sequential(nn.Flatten(), nn.Dropout())
    with pytest.raises(ValueError, match="submodules of model"):
        ser_fiq(model, torch.zeros(1, 1, 2, 2), nn.Dropout())
    with pytest.raises(ValueError, match="passes 1 is not valid"):
        ser_fiq(model, torch.zeros(1, 1, 2, 2), model[1], passes=1)
    with pytest.raises(ValueError, match=r"labels \[9\] have no prototype"):
        certainty_ratio(np.eye(2), [9, 5], np.eye(2), [5, 7])
    with pytest.raises(ValueError, match="repeated label"):
        certainty_ratio(np.eye(2), [5, 5], np.eye(2), [5, 5])
    with pytest.raises(ValueError, match="center has dimension 3"):
        ers_quality(np.eye(2), np.ones(3))

"""Chapter 1's evaluations: the first-image gallery, the resolution sweep and native/synthetic ratios."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from lrfr.data.base import FaceRecord
from lrfr.experiments.ui_cluster import (
    Evaluated, first_image_gallery, independent_ratio, native_synthetic_ratios, resolution_sweep,
)
from lrfr.protocols.identification import Identification
from lrfr.stats import Bootstrap


def test_first_image_of_each_identity_is_its_gallery():
    gallery = first_image_gallery(np.array([3, 3, 1, 3, 1, 2]))
    assert gallery.tolist() == [True, False, True, False, False, True]


def _evaluated(hits: int, probes: int, seed: int) -> Evaluated:
    ranks = np.where(np.arange(probes) < hits, 1, 5)
    labels = np.arange(probes)
    result = Identification(labels, ranks, (ranks == 1).astype(float))
    return Evaluated(result, Bootstrap(labels, resamples=400, seed=seed))


def test_independent_ratio_of_two_rank1_rates():
    native, synthetic = _evaluated(40, 400, 0), _evaluated(50, 400, 1)
    ratio = independent_ratio(native, native.rank(1), synthetic, synthetic.rank(1))
    assert ratio.value == pytest.approx(0.8)
    # delta method: sd of log ratio = sqrt((1-p1)/(n p1) + (1-p2)/(n p2)) ~ 0.199 -> 95 % about [0.54, 1.18]
    assert 0.45 < ratio.low < 0.65 and 1.0 < ratio.high < 1.3, ratio
    estimates = native.estimates((1, 20))
    assert estimates["Rank-1"].value == pytest.approx(10.0) and estimates["Rank-20"].value == pytest.approx(100.0)
    assert estimates["mAP"].value == pytest.approx(10.0)
    table = native_synthetic_ratios({"native LR": native, "synthetic LR": synthetic}, "ours", ranks=(1,))
    assert table.loc["CentreFace (paper, real faces)", "Rank-1"] == f"{32.1 / 39.2:.2f}"  # Cheng Table 4
    assert table.loc["ours", "Rank-1"].startswith("0.80 [")


class _MeanColour(nn.Module):
    """Embeds a face by its mean colour: identities of distinct flat colours stay apart at any size."""

    input_size = (16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3)) + torch.tensor([0.0, 0.0, 1e-3])


def test_resolution_sweep_searches_each_size_against_the_hr_gallery(tmp_path):
    colours = np.array([[250, 10, 10], [10, 250, 10], [10, 10, 250], [250, 250, 10]], np.uint8)
    records = []
    for identity, colour in enumerate(colours):
        for image in range(3):
            path = tmp_path / f"{identity}_{image}.png"
            Image.fromarray(np.broadcast_to(colour, (64, 64, 3)).copy()).save(path)
            records.append(FaceRecord(path, identity, str(identity), "test"))
    sweep = resolution_sweep(SimpleNamespace(backbone=_MeanColour()), records, (32, 8), resamples=50)
    assert sorted(sweep) == [8, 32]
    for evaluated in sweep.values():
        assert len(evaluated.result.first_ranks) == 8  # two probes per identity, one gallery image
        assert evaluated.boot.estimate(evaluated.rank(1)).value == 100.0

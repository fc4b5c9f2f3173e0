"""Registries build by name and by importable path, and name what is wrong."""

from __future__ import annotations

import pytest
import torch

from lrfr.registry import Registry
from lrfr.training import FeatureDistanceTerm


def cosine_gap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (1 - torch.nn.functional.cosine_similarity(a, b)).mean()


def test_register_build_and_errors():
    things = Registry("thing")

    @things.register("pair")
    def pair(first: int = 1, second: int = 2) -> tuple[int, int]:
        return first, second

    assert things.build("pair", second=5) == (1, 5)
    assert things.names() == ["pair"]
    with pytest.raises(ValueError, match="thing 'pair' is already registered"):
        things.register("pair")(pair)
    with pytest.raises(KeyError, match="unknown thing 'pear'; expected one of pair"):
        things.get("pear")
    assert things.get("tests.test_registry:cosine_gap") is cosine_gap
    with pytest.raises(KeyError, match="cannot import thing 'tests.nowhere:f'"):
        things.get("tests.nowhere:f")


def test_feature_distance_by_import_path():
    term = FeatureDistanceTerm("d", distance="tests.test_registry:cosine_gap")
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert term.distance(a, b).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown feature distance 'cos'"):
        FeatureDistanceTerm("d", distance="cos")

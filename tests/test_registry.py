"""Registries build by name and by importable path, and name what is wrong."""

from __future__ import annotations

import pytest
import torch

import lrfr.registry
from lrfr.registry import ImportNotAllowedError, Registry, allow_imports
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


def test_module_attribute_paths_need_an_explicit_allowance(monkeypatch, tmp_path):
    """A config naming 'os:system' must not reach it: only modules the user allowed are imported."""
    monkeypatch.setattr(lrfr.registry, "_allowed", set())
    monkeypatch.delenv("LRFR_ALLOW_IMPORTS", raising=False)
    things = Registry("thing")
    for path in ("os:system", "tests.test_registry:cosine_gap"):
        with pytest.raises(ImportNotAllowedError, match=f"thing '{path}' is not registered, and importing module "
                           f"'{path.split(':')[0]}' is not allowed.*LRFR_ALLOW_IMPORTS={path.split('.')[0].split(':')[0]}"):
            things.get(path)
    with pytest.raises(ImportNotAllowedError, match="feature distance 'os:system' is not registered"):
        FeatureDistanceTerm("d", distance="os:system")
    monkeypatch.setenv("LRFR_ALLOW_IMPORTS", " other , tests.test_registry")
    assert things.get("tests.test_registry:cosine_gap") is cosine_gap
    with pytest.raises(ImportNotAllowedError):
        things.get("tests.toy:make_toy")  # a sibling module of the allowed one
    monkeypatch.delenv("LRFR_ALLOW_IMPORTS")
    allow_imports("tests")
    assert things.get("tests.test_registry:cosine_gap") is cosine_gap
    with pytest.raises(ImportNotAllowedError):
        things.get("testsuite:f")  # a prefix is a whole module name, not a string prefix
    with pytest.raises(ValueError, match="module prefix 'os; rm' is not a dotted module name"):
        allow_imports("os; rm")

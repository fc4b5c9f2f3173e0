"""``lrfr bench eval``: chunked search against the full-sort reference, each in its own process."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lrfr.bench.search_eval import tinyface_like
from lrfr.cli import main


def test_tinyface_like_inputs_scale_and_give_every_probe_a_mate():
    probes, gallery, probe_labels, gallery_labels = tinyface_like(0.01, 8, seed=0)
    assert probes.shape == (37, 8) and gallery.shape == (44 + 1534, 8)
    assert (gallery_labels == -1).sum() == 1534
    assert set(probe_labels) <= set(gallery_labels[gallery_labels >= 0])
    np.testing.assert_allclose(np.linalg.norm(gallery, axis=1), 1, rtol=1e-5)


@pytest.mark.slow
def test_bench_eval_prints_one_line_per_implementation_and_a_comparison(capsys):
    main(["bench", "eval", "--scale", "0.02", "--dim", "32"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line.get("impl") for line in lines] == ["chunked", "naive", None]
    for line in lines[:2]:
        assert line["seconds"] > 0 and set(line["cmc"]) == {"1", "5", "20"}
    last = lines[-1]
    assert last["ranks_equal"] and last["first_ranks_equal"] and last["map_difference"] < 1e-9
    assert last["speedup"] > 0 and "memory_ratio" in last

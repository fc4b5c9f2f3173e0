"""``lrfr bench scale``: both phases run at a small size and report what they measured."""

from __future__ import annotations

import json

import pytest

from lrfr.cli import main


@pytest.mark.slow
def test_bench_scale_prints_one_line_per_phase(capsys, tmp_path):
    main(["bench", "scale", "--data-root", str(tmp_path), "--preset", "tiny", "--identities", "6", "--distractors",
          "30", "--ui", "12", "--workers", "0", "--batch-size", "16", "--ser-fiq-passes", "2"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["phase"] for line in lines] == ["embed", "tinyface"]
    embed, tinyface = lines
    assert embed["images"] == sum(1 for _ in (tmp_path / "synthetic-tiny").rglob("*.jpg"))
    assert tinyface["images"] == 6 * 3 + 30 + 12 and tinyface["distractors"] == 30 and tinyface["labelled"] == 18
    for line in lines:
        assert line["bench"] == "scale" and line["images_per_s"] > 0 and 0.1 < line["peak_rss_gb"] < 4
    assert set(tinyface["seconds"]) == {"embed", "search", "scoring"}

"""Claims as data: verdicts from intervals, claims.json round trip, the box and the scorecard."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lrfr import claims, stats
from lrfr.stats import Estimate


def test_every_registered_claim_has_a_valid_definition_and_the_papers_printed_difference():
    registry = claims.claims()
    assert len({c.id for c in registry}) == len(registry) and all(c.id.startswith(f"{c.paper}.") for c in registry)
    ours = claims.get_claim("chai2023.ours_beats_arcface")
    assert ours.paper_parts() == {"Ours, w/o dis": 71.915, "Baseline (ArcFace), w/o dis": 70.333}
    assert ours.paper_number() == pytest.approx(71.915 - 70.333)
    assert claims.get_claim("cheng2018.sr_then_fr_vdsr").paper_number() == pytest.approx(26.0 - 32.1)
    assert claims.get_claim("chai2023.ri_better_than_norm").paper_number() is None  # a figure: no number


@pytest.mark.parametrize("estimate, claim_id, expected", [
    (Estimate(1.5, 0.2, 2.8), "chai2023.ours_beats_arcface", "reproduced"),      # above 0, paper says greater
    (Estimate(-1.5, -2.8, -0.2), "chai2023.ours_beats_arcface", "contradicted"),
    (Estimate(0.5, -0.1, 1.1), "chai2023.ours_beats_arcface", "inconclusive"),   # straddles 0
    (Estimate(0.1, 0.0, 0.2), "chai2023.ours_beats_arcface", "inconclusive"),    # touches 0: not excluded
    (Estimate(-3.0, -5.0, -1.0), "cheng2018.sr_then_fr_vdsr", "reproduced"),     # paper says less
    (Estimate(3.0, 1.0, 5.0), "cheng2018.sr_then_fr_vdsr", "contradicted"),
    (Estimate(0.7, 0.6, 0.8), "chai2023.low_ri_misidentified", "reproduced"),    # AUC: null 0.5
    (Estimate(0.45, 0.3, 0.6), "chai2023.low_ri_misidentified", "inconclusive"),
    (Estimate(0.3, 0.2, 0.4), "chai2023.low_ri_misidentified", "contradicted"),
    (Estimate(1.0, math.nan, math.nan), "chai2023.ours_beats_arcface", "inconclusive"),
])
def test_verdict_follows_the_interval_the_papers_direction_and_null(estimate, claim_id, expected):
    assert claims.decide(claim_id, estimate).verdict == expected


def test_evaluate_estimates_the_paired_difference_and_its_parts_on_the_same_identities():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(200), 3)
    base = rng.random(600) < 0.3
    ours = base | (rng.random(600) < 0.4)  # ours hits wherever the baseline does, and more
    boot = stats.Bootstrap(labels, seed=1, resamples=200)
    a, b = stats.mean(ours, 100), stats.mean(base, 100)
    result = claims.evaluate("chai2023.ours_beats_arcface", boot, a - b, parts={"Ours": a, "Baseline (ArcFace)": b})
    assert result.estimate.value == pytest.approx(100 * (ours.mean() - base.mean()))
    assert result.verdict == "reproduced" and result.estimate.low > 0
    assert result.parts["Ours"].value == pytest.approx(100 * ours.mean())
    same = claims.evaluate("chai2023.ours_beats_arcface", boot, a - a)  # identical inputs: exactly 0, zero width
    assert (same.estimate.value, same.estimate.low, same.estimate.high) == (0.0, 0.0, 0.0)
    assert same.verdict == "inconclusive"


def test_unknown_claim_ids_raise_naming_the_id_and_the_papers_valid_ids():
    with pytest.raises(KeyError, match=r"'chai2023.ours_beats_arcfce'.*chai2023.ours_beats_arcface"):
        claims.get_claim("chai2023.ours_beats_arcfce")
    with pytest.raises(KeyError, match="nobody.claim"):
        claims.decide("nobody.claim", Estimate(1.0, 0.5, 1.5))
    with pytest.raises(KeyError, match="typo"):
        claims.show_claims(["chai2023.ours_beats_arcface", "chai2023.typo"])


def test_claims_json_round_trips_and_the_newest_file_of_each_chapter_is_found(tmp_path):
    results = [
        claims.decide("chai2023.ours_beats_arcface", Estimate(1.2, 0.4, 2.0, units=200),
                      parts={"Ours": Estimate(12.0, 10.0, 14.0), "Baseline (ArcFace)": Estimate(10.8, 9.0, 12.6)}),
        claims.decide("chai2023.ri_better_than_norm", Estimate(2.0, math.nan, math.nan), note="too few pairs"),
    ]
    run = tmp_path / "ri-ours"
    run.mkdir()
    path = claims.write_claims(run, results, chapter="02_recognizability", mode="smoke", data="SynthFace (synthetic)")
    read = claims.read_claims(path)
    assert (read.chapter, read.mode, read.data) == ("02_recognizability", "smoke", "SynthFace (synthetic)")
    assert list(read.claims) == json.loads(json.dumps([r.to_dict() for r in results]))
    assert read.claims[0]["verdict"] == "reproduced" and read.claims[0]["parts"][0] == {
        "label": "Ours", "value": 12.0, "low": 10.0, "high": 14.0, "level": 0.95, "resamples": 1000, "units": 0}
    assert [p["label"] for p in read.claims[0]["paper_parts"]] == ["Ours, w/o dis", "Baseline (ArcFace), w/o dis"]
    assert read.claims[1]["estimate"]["low"] is None and read.claims[1]["verdict"] == "inconclusive"
    assert [c.chapter for c in claims.find_claims(tmp_path)] == ["02_recognizability"]


@pytest.mark.parametrize("content, named", [
    ("not json", "not readable JSON"),
    ("[]", "holds a JSON list"),
    ('{"format_version": 1, "chapter": "x", "mode": "smoke", "data": "d", "written": "t"}', "no key 'claims'"),
    ('{"format_version": 1, "chapter": "x", "mode": "smoke", "data": "d", "written": "t", "claims": [{"id": "a"}]}',
     r"claims\[0\] has no key"),
])
def test_a_bad_claims_file_raises_naming_the_file_and_key(tmp_path, content, named):
    path = tmp_path / "claims.json"
    path.write_text(content)
    with pytest.raises(claims.ClaimsFileError, match=named) as error:
        claims.read_claims(path)
    assert str(path) in str(error.value)


def test_box_and_scorecard_show_the_papers_number_ours_with_its_interval_and_the_verdict(tmp_path):
    result = claims.decide("chai2023.ours_beats_arcface", Estimate(1.2, 0.4, 2.0),
                           parts={"Ours": Estimate(12.0, 10.0, 14.0)})
    box = claims.claims_box([result])
    for text in (box._repr_html_(), box._repr_markdown_()):
        assert "71.92 − 70.33 = +1.58" in text and "+1.20 [+0.40, +2.00]" in text and "reproduced" in text
        assert "Ours: 12.00 [10.00, 14.00]" in text
    (tmp_path / "ri-ours").mkdir()
    claims.write_claims(tmp_path / "ri-ours", [result], chapter="02_recognizability", mode="quick", data="SynthFace")
    card = claims.scorecard_markdown(claims.find_claims(tmp_path))
    assert "| 02_recognizability |" in card and "**reproduced**" in card and "quick, SynthFace" in card
    assert card.startswith("1 claims: 1 reproduced, 0 contradicted, 0 inconclusive.")
    assert "| 02_recognizability | quick, SynthFace | 1 | 0 | 0 |" in card  # the chapter's counts
    section = card.split("## 02_recognizability", 1)[1]  # then a section per chapter, a row per claim
    assert "| **reproduced** | Ours (all loss terms) beats the ArcFace baseline" in section
    assert "71.92 − 70.33 = +1.58 | +1.20 [+0.40, +2.00] |" in section
    assert "No chapter has recorded claims" in claims.scorecard_markdown([])


def test_small_effects_are_printed_with_enough_decimals_to_show_their_interval():
    tiny = claims.decide("chai2023.id_loss_moves_vlr_from_ui", Estimate(0.00046, 0.00028, 0.00071))
    text = claims.ours_text(tiny.to_dict())
    assert text == "+0.00046 [+0.00028, +0.00071]" and tiny.verdict == "reproduced"
    assert claims.ours_text(claims.decide("chai2023.ours_beats_arcface", Estimate(0.0, 0.0, 0.0)).to_dict()) == "+0.00 [+0.00, +0.00]"

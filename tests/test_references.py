"""The papers' reported numbers (lrfr.references) and the paper-beside-run comparison tables."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from lrfr.references import ComparisonTable, compare, reference_values

ROOT = Path(__file__).resolve().parents[1]
SYNTH = dict(data="SynthFace (quick preset)", backbone="mobilefacenet-tiny", mode="quick")


def cell(paper: str, table: int, row: str, column: str, metric: str):
    return next(r for r in reference_values(paper, table) if (r.row, r.column, r.metric) == (row, column, metric))


def test_every_cell_of_the_tables_is_there_including_the_dashes():
    sizes = {(p, t): len(reference_values(p, t)) for p, t in [("chai2023", 1), ("chai2023", 2), ("chai2023", 3),
                                                                 ("chai2023", 4), ("cheng2018", 3),
                                                                 ("cheng2018", 4), ("cheng2018", 5), ("cheng2018", 6),
                                                                 ("cheng2018", 7)]
             + [("ling2023", table) for table in range(1, 7)] + [("grm2023", table) for table in (2, 3, 4)]}
    assert sizes == {("chai2023", 1): 9 * 2, ("chai2023", 2): 14 * 4, ("chai2023", 3): 9 * 7,
                     ("chai2023", 4): 12, ("cheng2018", 3): 4 * 4, ("cheng2018", 4): 2 * 2 * 4,
                     ("cheng2018", 5): 10 * 4, ("cheng2018", 6): 2 * 4, ("cheng2018", 7): 2 * 4,
                     ("ling2023", 1): 11 * 4, ("ling2023", 2): 9 * 4, ("ling2023", 3): 10 * 3,
                     ("ling2023", 4): 10 * 6, ("ling2023", 5): 2 * 2, ("ling2023", 6): 9 * 6,
                     ("grm2023", 2): 17 * 4, ("grm2023", 3): 5 * 4 + 1, ("grm2023", 4): 16}
    assert len(reference_values()) == sum(sizes.values())
    dashes = [r for r in reference_values("chai2023") if r.value is None]
    assert len(dashes) == 6 + 20  # Table 1: six "-" in "w/o dis"; Table 3: twenty
    assert {r.table for r in dashes} == {1, 3}
    assert len([r for r in reference_values("ling2023", 2) if r.value is None]) == 5 + 2 * 2  # Table 2's "-"


def test_spot_values_as_printed():
    assert cell("grm2023", 2, "+Single Hypothesis SR 8x", "MS1MV3-R50", "Rank-1 IR").value == 27.69
    assert cell("grm2023", 2, "+Multi-scale Accumulation T_concat", "Glint360k-R101", "Rank-1 IR").value == 91.07
    assert cell("grm2023", 3, "probe T_add, gallery S_max", "Glint360k-R50", "Rank-1 IR").value == 92.46
    assert cell("grm2023", 4, "Ours", "d1", "Rank-1 IR").value == 95.4
    assert cell("chai2023", 1, "Ours", "w/o dis", "Rank-1 IR").value == 77.22
    assert cell("chai2023", 1, "TURL (CVPR20)", "w/o dis", "Rank-1 IR").value is None
    assert cell("chai2023", 2, "AdaFace (Reproduce)", "1.0m", "Rank-1 IR").value == 99.84
    assert cell("chai2023", 2, "T-C (IVC20)", "Avg.", "Rank-1 IR").note.startswith("fine-tuned: †")
    assert cell("chai2023", 3, "FAN (ACCV19)", "0.001", "TPR@FAR").value == 2.75
    assert cell("chai2023", 3, "Ours", "0.1", "TPIR20@FPIR").value == 22.81
    assert cell("chai2023", 3, "RAN (ECCV20)", "0.3", "TPR@FAR").value is None
    ours = cell("chai2023", 4, "Ours", "w/o dis", "Rank-1 IR")
    assert (ours.value, ours.unit, ours.note) == (71.915, "%", "losses: L_cls + L_ID + L_MSE + L_L1")
    assert cell("chai2023", 4, "II", "w/o dis", "Rank-1 IR").note == "losses: L_cls + L_MSE"
    assert cell("cheng2018", 4, "CentreFace", "SynLR-MF2", "Rank-20").value == 63.4
    assert cell("cheng2018", 4, "VggFace", "TinyFace", "mAP").value == 23.1
    assert cell("ling2023", 4, "MAug+Ours(1)", "XQLFW", "Accuracy").value == 92.18
    assert cell("ling2023", 4, "PAug+Ours(1)", "SCface d1", "Rank-1").value == 60.3
    assert cell("ling2023", 6, "1:0:1", "LFW", "Accuracy").value == 99.02
    assert cell("ling2023", 2, "Ours(Res34)", "TinyFace", "Rank-20").value == 0.54
    assert cell("ling2023", 5, "λ = 5", "XQLFW", "Accuracy").value == 92.45


def test_unknown_paper_or_table_is_named():
    with pytest.raises(ValueError, match=r"unknown paper 'chai2022'; the reference data has \['chai2023', 'cheng2018'"):
        reference_values("chai2022")
    with pytest.raises(ValueError, match=r"cheng2018 has no reference table 2; it has tables \[3, 4, 5, 6, 7\]"):
        reference_values("cheng2018", 2)


def test_compare_lists_paper_and_run_cells_with_differences():
    run = {("Ours", "w/ dis", "Rank-1 IR"): 12.3456, ("TURL (CVPR20)", "w/o dis", "Rank-1 IR"): 5.0}
    table = compare(run, "chai2023", 1, **SYNTH, all_rows=True)
    assert isinstance(table, ComparisonTable)
    assert len(table.rows) == 12 + 1  # twelve printed values, plus the run's value for a "-" cell
    ours = next(r for r in table.rows if (r.row, r.column) == ("Ours", "w/ dis"))
    assert (ours.paper, ours.run, ours.difference) == (73.06, 12.3456, pytest.approx(12.3456 - 73.06))
    markdown = compare(run, "chai2023", 1, **SYNTH, all_rows=True, same_data=True).to_markdown()
    assert "| Ours | w/ dis | Rank-1 IR (%) | 73.06 | 12.35 | -60.71 |" in markdown
    assert "| TURL (CVPR20) | w/o dis | Rank-1 IR (%) | – | 5.00 | – |" in markdown
    assert "| CSRI (ACCV19) | w/ dis | Rank-1 IR (%) | 44.80 | – | – |" in markdown
    # on other data (the default outside full mode) the values stand side by side, with no difference
    other = table.to_markdown()
    assert "| method | setting | metric | paper (its data) | this run (95 %) |" in other and "difference" not in other.split("\n")[2]
    assert "| Ours | w/ dis | Rank-1 IR (%) | 73.06 | 12.35 |" in other and "-60.71" not in other
    assert table.title == "Chai et al. (2023), Table 1: IR Comparison on TinyFace using ResNet-50"
    only_run = compare(run, "chai2023", 1, **SYNTH)  # default: the paper's rows this run also has
    assert [(r.row, r.column) for r in only_run.rows] == [
        ("TURL (CVPR20)", "w/ dis"), ("TURL (CVPR20)", "w/o dis"), ("Ours", "w/ dis"), ("Ours", "w/o dis")]


def test_provenance_names_data_backbone_mode_and_the_synthetic_caveat():
    synthetic = compare({}, "cheng2018", 4, **SYNTH)
    assert "SynthFace (quick preset) data, mobilefacenet-tiny backbone, quick mode" in synthetic.provenance
    assert "not Cheng et al. (2018)'s numbers" in synthetic.provenance
    real = compare({}, "cheng2018", 4, data="TinyFace", backbone="resnet50", mode="full")
    assert "TinyFace data, resnet50 backbone, full mode" in real.provenance and "synthetic" not in real.provenance
    with pytest.raises(ValueError, match="mode must be one of"):
        compare({}, "cheng2018", 4, data="TinyFace", backbone="resnet50", mode="fast")


def test_html_is_a_table_with_escaped_text_and_the_provenance():
    html = compare({("Ours", "0.01", "TPR@FAR"): 1.0}, "chai2023", 3, **SYNTH, all_rows=True, same_data=True)._repr_html_()
    assert html.count("<tr>") == 1 + 63 - 20  # header + every printed value
    assert "<td style=\"text-align:right\">-63.60</td>" in html
    assert "TPR(%)@FAR" in html and "SynthFace (quick preset) data" in html and "<em>" in html


@pytest.mark.parametrize("key, valid", [
    (("Ourz", "w/ dis", "Rank-1 IR"), "'AdaFace (Reproduce)', 'Ours'"),
    (("Ours", "w dis", "Rank-1 IR"), "('w/ dis', 'Rank-1 IR'), ('w/o dis', 'Rank-1 IR')"),
    (("Ours", "w/ dis", "rank1"), "('w/ dis', 'Rank-1 IR')"),
])
def test_a_key_outside_the_papers_table_fails_with_the_valid_keys(key, valid):
    with pytest.raises(ValueError, match="are not cells of Chai et al. \\(2023\\) Table 1") as error:
        compare({key: 1.0}, "chai2023", 1, **SYNTH)
    assert repr(key) in str(error.value) and valid in str(error.value)


def test_column_metric_pairs_are_checked_together():
    with pytest.raises(ValueError, match=r"\('Ours', '0.01', 'TPIR20@FPIR'\)\] are not cells"):
        compare({("Ours", "0.01", "TPIR20@FPIR"): 1.0}, "chai2023", 3, **SYNTH)


def test_the_reference_data_ships_in_the_wheel():
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    data_files = sorted(p.name for p in (ROOT / "lrfr" / "references").iterdir() if p.suffix == ".csv")
    assert data_files == ["claims.csv", "tables.csv", "values.csv"]
    assert package_data["lrfr.references"] == ["*.csv"]


def test_own_rows_are_listed_after_the_papers_rows_with_their_settings_checked():
    from lrfr.references import compare

    key = ("quick ArcFace (this run)", "TinyFace", "Rank-1")
    table = compare({key: 12.5}, "cheng2018", 4, data="SynthFace", backbone="quick", mode="quick",
                    own_rows=[key[0]], all_rows=True)
    last = table.rows[-1]
    assert (last.row, last.column, last.metric, last.paper, last.run, last.unit) == (*key, None, 12.5, "%")
    assert table.rows[0].row == "VggFace" and table.rows[0].run is None
    with pytest.raises(ValueError, match="not settings of"):
        compare({(key[0], "TinyFace", "Rank-2"): 1.0}, "cheng2018", 4, data="SynthFace", backbone="quick",
                mode="quick", own_rows=[key[0]])
    with pytest.raises(ValueError, match="are not cells of"):
        compare({key: 1.0}, "cheng2018", 4, data="SynthFace", backbone="quick", mode="quick")


def test_effects_show_the_papers_difference_beside_ours_with_its_interval():
    from lrfr.stats import Estimate

    key, base = ("Ours", "w/o dis", "Rank-1 IR"), ("Baseline (ArcFace)", "w/o dis", "Rank-1 IR")
    table = compare({key: Estimate(12.0, 10.0, 14.0), base: Estimate(11.0, 9.0, 13.0)}, "chai2023", 4, **SYNTH,
                    baseline="Baseline (ArcFace)", effects={key: Estimate(1.0, 0.2, 1.8)})
    assert table.header[3:] == ("paper (its data)", "this run (95 %)", "paper: Δ vs Baseline (ArcFace)",
                                "this run: Δ vs Baseline (ArcFace) (95 %)")
    markdown = table.to_markdown()
    assert "| Ours | w/o dis | Rank-1 IR (%) | 71.92 | 12.00 [10.00, 14.00] | +1.58 | +1.00 [+0.20, +1.80] |" in markdown
    assert "| Baseline (ArcFace) | w/o dis | Rank-1 IR (%) | 70.33 | 11.00 [9.00, 13.00] | (baseline) | (baseline) |" in markdown
    assert "compare the effects (Δ vs Baseline (ArcFace)), not the values" in table.provenance
    points = compare({key: 12.0, base: 11.5}, "chai2023", 4, **SYNTH, baseline="Baseline (ArcFace)")
    assert "| +1.58 | +0.50 (no interval) |" in points.to_markdown()  # no estimates: the point effect only
    with pytest.raises(ValueError, match="baseline 'ArcFace' is not a row of Chai et al. \\(2023\\) Table 4"):
        compare({key: 12.0}, "chai2023", 4, **SYNTH, baseline="ArcFace")
    with pytest.raises(ValueError, match="are not cells of"):
        compare({key: 12.0}, "chai2023", 4, **SYNTH, baseline="Baseline (ArcFace)",
                effects={("Ourz", "w/o dis", "Rank-1 IR"): Estimate(1.0, 0.0, 2.0)})

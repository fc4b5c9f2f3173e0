"""The book's chapters, every one in _toc.yml executed in smoke mode through papermill (``lrfr book``) in
a copy of the book, and the HTML built from them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from lrfr.book import build, chapters, claim_records
from lrfr.claims import read_claims
from lrfr.experiments.maug import CLAIM_CELLS
from lrfr.runs import RunFolder, find_runs

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = tuple(notebook.stem for notebook in chapters(ROOT))


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    """A copy of the book built in smoke mode; data and results land inside the copy."""
    root = tmp_path_factory.mktemp("book")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(ROOT / name, root / name)
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    build(root, mode="smoke")
    return root


def page(book: Path, chapter: str) -> str:
    return (book / "_build" / "html" / "book" / f"{chapter}.html").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_each_chapter_executes_without_errors_and_shows_interactive_figures(book, chapter):
    executed = nbformat.read(book / "_build" / "src" / "book" / f"{chapter}.ipynb", as_version=4)
    outputs = [output for cell in executed.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr" and "Traceback" in o.text]
    html = page(book, chapter)
    assert html.count('class="plotly-graph-div"') >= 3
    assert "_static/plotly.min.js" in html and "cdn.plot.ly" not in html
    assert "Traceback" not in html
    assert "smoke</strong> mode" in html  # the page says which mode produced it
    assert "_static/mathjax/tex-mml-chtml.js" in html and "tag_hide-input" in html  # offline TeX, folded code
    if "write_claims" in (ROOT / "book" / f"{chapter}.ipynb").read_text():  # a chapter that decides claims
        assert chapter in {record["chapter"] for record in claim_records(book)}
        assert 'class="lrfr-claims"' in html and chapter in page(book, "scorecard")


@pytest.mark.slow
def test_chapter_pages_hold_the_paper_vs_run_tables(book):
    first, second = page(book, "01_data_ui_cluster"), page(book, "02_recognizability")
    assert "Cheng et al. (2018), Table 4" in first and ('class="dataframe' in first or "lrfr-comparison" in first)
    for table in (1, 2, 3, 4):
        assert f"Chai et al. (2023), Table {table}" in second
    assert "not Chai et al. (2023)&#x27;s numbers" in second or "not Chai et al. (2023)'s numbers" in second
    timings = [json.loads(line) for line in (book / "_build" / "timings.jsonl").read_text().splitlines()]
    assert {t["chapter"] for t in timings} == set(CHAPTERS) and all(t["mode"] == "smoke" for t in timings)


@pytest.mark.slow
def test_chapters_leave_run_folders_the_dashboard_reads(book):
    runs = {path.name.rsplit("-", 1)[0]: RunFolder.open(path) for path in find_runs(book / "results")}
    assert {"ri-ours", "ri-baseline__arcface", "ri-i"} <= set(runs)
    pretrain = next(run for name, run in runs.items() if name.startswith("pretrain"))
    ours = runs["ri-ours"].load_embeddings("explore")
    assert {"path", "split", "native_height", "ri_learned", "ri_target", "ui_distance"} <= set(ours.metadata)
    center = json.loads((runs["ri-ours"].path / "ui_center.json").read_text())["center"]
    assert len(center) == ours.embeddings.shape[1]
    assert (runs["ri-ours"].path / "projections" / "explore.tsne.2d.parquet").is_file()
    assert "ri_learned" not in pretrain.load_embeddings("explore").metadata
    assert "chapter1" in pretrain.metrics() and "chapter2" in runs["ri-ours"].metrics()


@pytest.mark.slow
def test_chapter_3_shows_ling_et_al_beside_its_runs_and_decides_its_claims(book):
    html = page(book, "03_maug_logexp")
    assert "Fig. 3a" in html and "reference code (50/0/50)" in html and "92.18" in html  # Table 4's MAug+Ours(1), XQLFW
    decided = read_claims(next((book / "results").glob("c3-maug-plus-ours-1-*/claims.json")))
    assert decided.chapter == "03_maug_logexp" and decided.mode == "smoke"
    assert {c["id"] for c in decided.claims} == set(CLAIM_CELLS)


@pytest.mark.slow
def test_chapter_4_shows_cheng_et_al_tables_beside_its_runs_and_decides_its_claims(book):
    from lrfr.experiments.cheng2018 import CLAIMS

    html = page(book, "04_tinyface_csri")
    for table in (3, 4, 5, 6, 7):
        assert f"Cheng et al. (2018), Table {table}" in html
    decided = read_claims(next((book / "results").glob("c4-csri-*/claims.json")))
    assert decided.chapter == "04_tinyface_csri" and decided.mode == "smoke"
    assert {c["id"] for c in decided.claims} == set(CLAIMS)
    runs = {path.name.rsplit("-", 1)[0]: RunFolder.open(path) for path in find_runs(book / "results")}
    stored = runs["c4-sr-fr-vdsr"].load_embeddings("tinyface")
    assert any(stored.metadata["sr_path"]) and "chapter4" in runs["c4-csri"].metrics()


@pytest.mark.slow
def test_chapter_5_shows_grm_et_al_tables_and_leaves_hypothesis_templates(book):
    from lrfr.experiments.grm2023 import CLAIMS

    html = page(book, "05_meet_in_the_middle")
    for table in (2, 3, 4):
        assert f"Grm et al. (2023), Table {table}" in html
    decided = read_claims(next((book / "results").glob("grm-mitm-*/claims.json")))
    assert decided.chapter == "05_meet_in_the_middle" and decided.mode == "smoke"
    assert {c["id"] for c in decided.claims} == set(CLAIMS)
    run = RunFolder.open(next((book / "results").glob("grm-mitm-*/claims.json")).parent)
    stored = run.load_embeddings("hypotheses")
    assert {"split", "path", "scale", "sigma", "chain", "native_height", "hypothesis_path", "sr_path"} <= set(stored.metadata)
    split, shown = stored.metadata["split"], stored.metadata["hypothesis_path"] != ""
    assert shown[split == "probe"].any() and shown[split == "gallery"].any()

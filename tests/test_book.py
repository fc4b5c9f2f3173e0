"""``lrfr book``: papermill executes the chapters with their mode's parameters; jupyter-book renders."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml

from lrfr.book import ChapterError, build, chapters, parameters, timings

ROOT = Path(__file__).resolve().parents[1]


def copy_book(tmp_path: Path, chapter_sources: dict[str, list[str]]) -> Path:
    """The real book (config, toc, pages) plus toy chapters, each a list of code cells."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(ROOT / name, root / name)
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("*.ipynb", "params"))
    (root / "book" / "params").mkdir()
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    toc["chapters"] = [{"file": "book/scorecard"}, *({"file": f"book/{name}"} for name in chapter_sources)]
    (root / "_toc.yml").write_text(yaml.safe_dump(toc))
    for name, cells in chapter_sources.items():
        notebook = nbformat.v4.new_notebook()
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        notebook.cells = [nbformat.v4.new_markdown_cell(f"# Chapter {name}\n\n{MATH_SENTENCE}")]
        notebook.cells.append(nbformat.v4.new_code_cell("value: int = 1  # a parameter", metadata={"tags": ["parameters"]}))
        notebook.cells += [nbformat.v4.new_code_cell(source) for source in cells]
        nbformat.write(notebook, root / "book" / f"{name}.ipynb")
        for mode, value in (("quick", 21), ("full", 1000)):
            (root / "book" / "params" / f"{name}.{mode}.yaml").write_text(f"value: {value}\n")
    return root


MATH_SENTENCE = r"The pull of a face: $d_i^P = 1-\cos\theta_{y_i}$, with $\hat v_i$ its embedding."
TOY_CELLS = [
    "print(f'answer = {value * 2}')",
    "import plotly.graph_objects as go\nfrom lrfr.plots import show\n"
    "show(go.Figure(go.Scatter(x=[1, 2, 3], y=[4, 1, 2], name='toy-trace'), layout=dict(title='toy figure')))",
    "from lrfr.references import compare\n"
    "compare({('Ours', 'w/ dis', 'Rank-1 IR'): 12.5}, 'chai2023', 1, data='SynthFace', backbone='tiny', mode='quick')",
    "import ipywidgets\n_ = ipywidgets.interact(lambda x: print('x =', x), x=(0, 5))",
    "from lrfr import claims\nbox = claims.show_claims(['chai2023.ours_beats_arcface'])",
    "from pathlib import Path\nfrom lrfr.stats import Estimate\n"
    "Path('results/toy-run').mkdir(parents=True, exist_ok=True)\n"
    "decided = [claims.decide('chai2023.ours_beats_arcface', Estimate(1.0, 0.5, 1.5))]\n"
    "claims.write_claims('results/toy-run', decided, chapter='toy', mode='quick', data='toy data')\n"
    "box.update(decided)",
]
CDN = re.compile(r"cdn\.plot\.ly|cdn\.jsdelivr|unpkg\.com/plotly|cdnjs\.cloudflare|require(\.min)?\.js")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A quick build of the real book plus one toy chapter (text, a plotly figure, a comparison, a widget)."""
    root = copy_book(tmp_path_factory.mktemp("book"), {"toy": TOY_CELLS})
    assert build(root, mode="quick") == root / "_build" / "html" / "index.html"
    return root


@pytest.mark.slow
def test_chapters_run_with_their_mode_parameters_and_the_html_is_built(built):
    root = built
    assert [nb.stem for nb in chapters(root)] == ["toy"]
    assert parameters(root / "book" / "toy.ipynb", "full") == {"value": 1000}
    index = root / "_build" / "html" / "index.html"
    assert "book/intro.html" in index.read_text()
    assert "Low-resolution face recognition, reproduced" in (index.parent / "book" / "intro.html").read_text()
    page = (root / "_build" / "html" / "book" / "toy.html").read_text()
    assert "answer = 42" in page
    executed = nbformat.read(root / "_build" / "src" / "book" / "toy.ipynb", as_version=4)
    assert any("answer = 42" in str(cell.get("outputs")) for cell in executed.cells)
    source = nbformat.read(root / "book" / "toy.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in source.cells if cell.cell_type == "code")


@pytest.mark.slow
def test_plotly_figures_are_interactive_with_the_books_own_plotly_js(built):
    html = built / "_build" / "html"
    page = (html / "book" / "toy.html").read_text()
    assert page.count('class="plotly-graph-div"') == 1 and "Plotly.newPlot" in page and "toy-trace" in page
    tags = re.findall(r"<script[^>]*\ssrc=[^>]*>", page)
    assert not [tag for tag in tags if "://" in tag], tags  # no script from another host
    in_order = [re.search(r'src="([^"]+)"', tag)[1] for tag in tags if not re.search(r"\s(defer|async)", tag)]
    assert in_order[0].startswith("../_static/plotly.min.js")  # runs first: no AMD loader can be defined yet
    assert not CDN.search(page), CDN.search(page)
    import plotly

    bundled = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert (html / "_static" / "plotly.min.js").read_bytes() == bundled.read_bytes()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs a headless chromium")
def test_a_browser_draws_the_figure_offline(built):
    page = built / "_build" / "html" / "book" / "toy.html"
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
         "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert 'class="plotly-graph-div js-plotly-plot"' in dom and 'class="main-svg"' in dom  # Plotly.newPlot ran


@pytest.mark.slow
def test_a_comparison_table_shows_as_an_html_table(built):
    page = (built / "_build" / "html" / "book" / "toy.html").read_text()
    assert '<div class="lrfr-comparison"><table>' in page
    assert "Chai et al. (2023), Table 1: IR Comparison on TinyFace using ResNet-50" in page
    assert '<td style="text-align:right">12.50</td>' in page and "SynthFace data, tiny backbone, quick mode" in page
    assert "-60.56" not in page  # synthetic vs the paper's data: no difference column


@pytest.mark.slow
def test_widgets_leave_no_state_and_load_no_widget_js(built):
    executed = nbformat.read(built / "_build" / "src" / "book" / "toy.ipynb", as_version=4)
    assert "widgets" not in executed.metadata
    page = (built / "_build" / "html" / "book" / "toy.html").read_text()
    assert "application/vnd.jupyter.widget-state+json" not in page and "embed-amd" not in page


@pytest.mark.slow
def test_chapter_timings_are_written_as_json_lines(built):
    lines = (built / "_build" / "timings.jsonl").read_text().splitlines()
    assert [json.loads(line)["chapter"] for line in lines] == ["toy"]
    assert timings(built) == [json.loads(line) for line in lines]
    assert set(timings(built)[0]) == {"chapter", "mode", "seconds"} and timings(built)[0]["mode"] == "quick"


def test_a_failing_chapter_is_named_with_its_cell(tmp_path):
    root = copy_book(tmp_path, {"broken": ["x = 1", "raise ValueError('synthetic failure')"]})
    with pytest.raises(ChapterError, match=r"chapter 'broken' \(quick mode\) failed in cell .*ValueError: synthetic failure"):
        build(root, mode="quick")


def test_missing_parameter_file_and_unknown_chapter_are_named(tmp_path):
    root = copy_book(tmp_path, {"toy": ["pass"]})
    (root / "book" / "params" / "toy.full.yaml").unlink()
    with pytest.raises(FileNotFoundError, match="chapter 'toy' has no full parameter file"):
        parameters(root / "book" / "toy.ipynb", "full")
    with pytest.raises(ValueError, match=r"unknown chapter\(s\) \['nope'\]"):
        build(root, only=["nope"])
    with pytest.raises(ValueError, match="mode must be one of"):
        parameters(root / "book" / "toy.ipynb", "medium")


def test_the_real_book_has_a_table_of_contents_with_the_intro_first():
    from lrfr.book import toc_entries

    assert toc_entries(ROOT)[0] == "book/intro"
    assert (ROOT / "book" / "intro.md").is_file()


def test_bench_book_prints_each_chapter_time_as_a_json_line(tmp_path, monkeypatch, capsys):
    import lrfr.bench.book as bench_book
    from lrfr import claims
    from lrfr.bench import BENCHMARKS
    from lrfr.stats import Estimate

    def fake_build(root: Path, mode: str, only: list[str] | None) -> None:
        (root / "_build").mkdir()
        record = {"chapter": "toy", "mode": mode, "seconds": 1.5}
        (root / "_build" / "timings.jsonl").write_text(json.dumps(record) + "\n")
        decided = claims.decide("chai2023.ours_beats_arcface", Estimate(1.0, -0.5, 2.5)).to_dict()
        claim = {"chapter": "toy", "mode": mode, "data": "toy data", "written": "2026-01-01T00:00:00+00:00", **decided}
        (root / "_build" / "claims.jsonl").write_text(json.dumps(claim) + "\n")

    monkeypatch.setattr(bench_book, "build", fake_build)
    BENCHMARKS.get("book")(["--root", str(tmp_path)])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert records[0] == {"bench": "book", "chapter": "toy", "mode": "quick", "seconds": 1.5}
    assert records[1]["chapter"] == "(whole book, with HTML)" and len(records) == 3
    assert records[2]["claim"] == "chai2023.ours_beats_arcface" and records[2]["verdict"] == "inconclusive"
    assert records[2]["estimate"]["low"] == -0.5 and records[2]["paper_number"] == pytest.approx(71.915 - 70.333)


@pytest.mark.slow
def test_code_cells_are_folded_except_the_parameters(built):
    staged = nbformat.read(built / "_build" / "src" / "book" / "toy.ipynb", as_version=4)
    code = [cell for cell in staged.cells if cell.cell_type == "code"]
    shown = [cell for cell in code if "hide-input" not in cell.metadata.get("tags", [])]
    assert {tag for cell in shown for tag in cell.metadata["tags"]} <= {"parameters", "injected-parameters"}
    assert len(shown) == 2 and len(code) == len(shown) + len(TOY_CELLS)  # parameters + papermill's injected ones
    page = (built / "_build" / "html" / "book" / "toy.html").read_text()
    assert page.count("tag_hide-input") == len(TOY_CELLS) and "tag_parameters" in page
    source = nbformat.read(built / "book" / "toy.ipynb", as_version=4)
    assert not any("hide-input" in cell.metadata.get("tags", []) for cell in source.cells)  # sources untouched


@pytest.mark.slow
def test_mathjax_is_the_books_own_copy_and_a_browser_renders_tex_offline(built):
    from lrfr.bench.dashboard import CHROMIUM, chromium
    from lrfr.book import mathjax_dir

    html = built / "_build" / "html"
    page = html / "book" / "toy.html"
    text = page.read_text()
    assert re.search(r'<script defer="defer" src="\.\./_static/mathjax/tex-mml-chtml\.js', text)
    assert "cdn.jsdelivr" not in text and "mathjax@3" not in text
    copied = html / "_static" / "mathjax" / "tex-mml-chtml.js"
    assert copied.read_bytes() == (mathjax_dir() / "tex-mml-chtml.js").read_bytes()
    if not CHROMIUM.is_file():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (`make browser` installs it as root)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with chromium(built / "profile") as browser_page:
        remote = []
        browser_page.route(re.compile(r"^(?!file:).*"), lambda route: (remote.append(route.request.url), route.abort()))
        browser_page.goto(page.as_uri())
        browser_page.wait_for_function("document.querySelectorAll('mjx-container').length >= 2", timeout=60_000)
        rendered = browser_page.locator("mjx-container").first
        assert rendered.evaluate("node => node.getBoundingClientRect().width") > 0
        assert "\\cos" not in browser_page.locator("article").inner_text()  # no raw TeX left on the page
    assert not remote, remote  # nothing fetched from outside the book


@pytest.mark.slow
def test_the_scorecard_page_and_claim_records_hold_the_chapters_claims(built):
    from lrfr.book import claim_records

    records = claim_records(built)
    assert [(r["chapter"], r["id"], r["verdict"]) for r in records] == [("toy", "chai2023.ours_beats_arcface", "reproduced")]
    page = (built / "_build" / "html" / "book" / "scorecard.html").read_text()
    assert "Ours (all loss terms) beats the ArcFace baseline" in page and "<strong>reproduced</strong>" in page
    assert "71.92 − 70.33 = +1.58" in page and "+1.00 [+0.50, +1.50]" in page and "quick, toy data" in page


@pytest.mark.slow
def test_the_claims_box_shown_before_the_verdicts_is_updated_in_place(built):
    staged = nbformat.read(built / "_build" / "src" / "book" / "toy.ipynb", as_version=4)
    shown = next(cell for cell in staged.cells if "show_claims" in cell.source)
    html = shown.outputs[0]["data"]["text/html"]
    assert 'class="lrfr-claims"' in html and "lrfr-reproduced" in html and "pending" not in html
    page = (built / "_build" / "html" / "book" / "toy.html").read_text()
    assert page.count('class="lrfr-claims"') == 1 and "+1.00 [+0.50, +1.50]" in page


def test_a_stale_claims_file_of_an_executed_chapter_is_not_collected(tmp_path):
    from lrfr import claims
    from lrfr.book import SCORECARD, claim_records, collect_claims, write_scorecard
    from lrfr.stats import Estimate

    root = copy_book(tmp_path, {"toy": ["pass"], "other": ["pass"]})
    (root / "_build").mkdir()
    result = claims.decide("chai2023.ours_beats_arcface", Estimate(-1.0, -1.5, -0.5))
    for chapter in ("toy", "other"):
        (root / "results" / chapter).mkdir(parents=True)
        claims.write_claims(root / "results" / chapter, [result], chapter=chapter, mode="quick", data="d")
    notebooks = [root / "book" / "toy.ipynb", root / "book" / "other.ipynb"]
    # toy executed in a build that started after its claims.json was written: stale, left out;
    # other was not executed: its newest claims.json stands
    collected = collect_claims(root, notebooks, notebooks[:1], "quick", None, since="9999-01-01T00:00:00+00:00")
    assert [c.chapter for c in collected] == ["other"]
    assert [(r["chapter"], r["verdict"]) for r in claim_records(root)] == [("other", "contradicted")]
    staging = root / "_build" / "src"
    (staging / "book").mkdir(parents=True)
    (staging / SCORECARD).write_text("# Scorecard\n\nno marker here\n")
    with pytest.raises(ValueError, match="has no line '<!-- lrfr book: scorecard -->'"):
        write_scorecard(root, staging, collected)
    (staging / SCORECARD).write_text("# Scorecard\n\n<!-- lrfr book: scorecard -->\n")
    write_scorecard(root, staging, collected)
    assert "| other |" in (staging / SCORECARD).read_text() and "**contradicted**" in (staging / SCORECARD).read_text()

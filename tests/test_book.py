"""``lrfr book``: papermill executes the chapters with their mode's parameters; jupyter-book renders."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

from lrfr.book import ChapterError, build, chapters, parameters

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
    toc["chapters"] = [{"file": f"book/{name}"} for name in chapter_sources]
    (root / "_toc.yml").write_text(yaml.safe_dump(toc))
    for name, cells in chapter_sources.items():
        notebook = nbformat.v4.new_notebook()
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        notebook.cells = [nbformat.v4.new_markdown_cell(f"# Chapter {name}")]
        notebook.cells.append(nbformat.v4.new_code_cell("value: int = 1  # a parameter", metadata={"tags": ["parameters"]}))
        notebook.cells += [nbformat.v4.new_code_cell(source) for source in cells]
        nbformat.write(notebook, root / "book" / f"{name}.ipynb")
        for mode, value in (("quick", 21), ("full", 1000)):
            (root / "book" / "params" / f"{name}.{mode}.yaml").write_text(f"value: {value}\n")
    return root


@pytest.mark.slow
def test_chapters_run_with_their_mode_parameters_and_the_html_is_built(tmp_path):
    root = copy_book(tmp_path, {"toy": ["print(f'answer = {value * 2}')"]})
    assert [nb.stem for nb in chapters(root)] == ["toy"]
    assert parameters(root / "book" / "toy.ipynb", "full") == {"value": 1000}
    index = build(root, mode="quick")
    assert index == root / "_build" / "html" / "index.html"
    assert "book/intro.html" in index.read_text()
    assert "Low-resolution face recognition, reproduced" in (index.parent / "book" / "intro.html").read_text()
    page = (root / "_build" / "html" / "book" / "toy.html").read_text()
    assert "answer = 42" in page
    executed = nbformat.read(root / "_build" / "src" / "book" / "toy.ipynb", as_version=4)
    assert any("answer = 42" in str(cell.get("outputs")) for cell in executed.cells)
    source = nbformat.read(root / "book" / "toy.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in source.cells if cell.cell_type == "code")


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

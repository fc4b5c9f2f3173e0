"""Notebook hygiene for every chapter in _toc.yml: no outputs, no Output widgets, python3 kernel,
documented parameters.

The parameters cell is read with papermill's own inference (``papermill.inspect_notebook``, what
``papermill --help-notebook`` prints), so a parameter it cannot document fails here.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml

from lrfr.book import MODES, chapters, toc_entries

ROOT = Path(__file__).resolve().parents[1]


def _assigned_names(source: str) -> list[str]:
    """Names assigned at the top level of a cell (plain and annotated assignments)."""
    names = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [target.id for target in targets if isinstance(target, ast.Name)]
    return names


def _parameter_problems(notebook: Path, cell_source: str) -> list[str]:
    documented = papermill.inspect_notebook(str(notebook))
    problems = []
    for name in _assigned_names(cell_source):
        if name not in documented:
            problems.append(f"parameter {name!r} is invisible to papermill --help-notebook: write it on one "
                            f"line as `{name}: type = value  # meaning` with a simple type (int, str, list[int], "
                            "Optional[str])")
        elif documented[name]["inferred_type_name"] == "None":
            problems.append(f"parameter {name!r} has no type annotation")
        elif not documented[name]["help"]:
            problems.append(f"parameter {name!r} has no trailing `# meaning` comment")
    return problems


def _params_file_problems(notebook: Path, names: list[str]) -> list[str]:
    problems = []
    for mode in MODES:
        path = notebook.parent / "params" / f"{notebook.stem}.{mode}.yaml"
        if not path.is_file():
            problems.append(f"missing parameter file {path}")
            continue
        unknown = sorted(set(yaml.safe_load(path.read_text()) or {}) - set(names))
        if unknown:
            problems.append(f"{path.name} sets {unknown}, which the parameters cell does not define ({names})")
    return problems


# ipywidgets' Output widget (behind interact / interactive too): nbclient mimics it by writing comm messages to
# the kernel while it waits for the cell's reply, and a few per cent of such cells then stall until the
# execution timeout, which `lrfr book` does not set (measured: 6 of 178 interact cells waited the whole 20 s
# of a papermill --execution-timeout; 0 of 300 cells of a slider wired to a Label with observe).
OUTPUT_WIDGET = re.compile(r"\b(?:interact|interact_manual|interactive|Output)\s*\(")


def notebook_problems(notebook: Path) -> list[str]:
    """Everything wrong with a chapter notebook as committed (an empty list when it is clean)."""
    nb = nbformat.read(notebook, as_version=4)
    problems = [
        f"cell {index} has outputs or an execution count: clear them before committing"
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ] + [
        f"cell {index} uses an ipywidgets Output widget (interact, interactive or Output), which can stall "
        "headless execution: update a Label or HTML widget from the control's observe instead"
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and OUTPUT_WIDGET.search(cell.source)
    ]
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    if kernel != "python3":  # papermill cannot read the parameters without the kernel's language
        return [*problems, f"kernelspec name is {kernel!r}, expected 'python3'"]
    tagged = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", [])]
    if len(tagged) != 1:
        return [*problems, f"{len(tagged)} cells are tagged 'parameters', expected exactly one"]
    names = _assigned_names(tagged[0].source)
    return problems + _parameter_problems(notebook, tagged[0].source) + _params_file_problems(notebook, names)


def test_every_chapter_in_the_table_of_contents_is_clean():
    missing = [entry for entry in toc_entries(ROOT)
               if not any((ROOT / f"{entry}{suffix}").is_file() for suffix in (".md", ".ipynb"))]
    assert not missing, f"_toc.yml lists pages that do not exist: {missing}"
    problems = {notebook.name: notebook_problems(notebook) for notebook in chapters(ROOT)}
    assert not any(problems.values()), problems


PARAMETERS = 'data_root: str = ""  # dataset folder; empty: synthetic\nepochs: int = 2  # training epochs'


def write_chapter(folder: Path, parameters: str = PARAMETERS, params: dict[str, str] | None = None) -> Path:
    """A clean chapter ``toy.ipynb`` with its two parameter files under ``folder``."""
    (folder / "params").mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# Toy"),
                nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("print(epochs)")]
    nbformat.write(nb, folder / "toy.ipynb")
    for mode, text in (params or {"smoke": "epochs: 1\n", "quick": "epochs: 1\n", "full": "epochs: 20\ndata_root: /data\n"}).items():
        (folder / "params" / f"toy.{mode}.yaml").write_text(text)
    return folder / "toy.ipynb"


def edit(notebook: Path, change) -> Path:
    nb = nbformat.read(notebook, as_version=4)
    change(nb)
    nbformat.write(nb, notebook)
    return notebook


def test_a_clean_chapter_has_no_problems(tmp_path):
    notebook = write_chapter(tmp_path)
    assert notebook_problems(notebook) == []
    assert set(papermill.inspect_notebook(str(notebook))) == {"data_root", "epochs"}


def add_output(nb):
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="2\n")]


def test_outputs_and_execution_counts_are_caught(tmp_path):
    notebook = edit(write_chapter(tmp_path), add_output)
    assert notebook_problems(notebook) == ["cell 2 has outputs or an execution count: clear them before committing"]
    edit(notebook, lambda nb: (nb.cells[2].update(outputs=[]), nb.cells[1].update(execution_count=3)))
    assert notebook_problems(notebook) == ["cell 1 has outputs or an execution count: clear them before committing"]


def test_a_copy_of_each_real_chapter_with_an_output_added_is_caught(tmp_path):
    shutil.copytree(ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for notebook in chapters(ROOT):  # none yet is fine: the toy chapter above covers the checker
        copy = edit(tmp_path / "book" / notebook.name, lambda nb: nb.cells.append(
            nbformat.v4.new_code_cell("1", outputs=[nbformat.v4.new_output("stream", text="1\n")])))
        assert any("has outputs" in problem for problem in notebook_problems(copy)), notebook.name


@pytest.mark.parametrize("source", [
    "widgets.interact(lambda a: print(a), a=widgets.FloatSlider())",
    "interactive (f, a=1)",
    "out = widgets.Output()",
])
def test_output_widgets_are_caught_and_a_label_set_by_observe_is_not(tmp_path, source):
    notebook = edit(write_chapter(tmp_path), lambda nb: nb.cells.append(nbformat.v4.new_code_cell(source)))
    assert [p.split(" (")[0] for p in notebook_problems(notebook)] == ["cell 3 uses an ipywidgets Output widget"]
    edit(notebook, lambda nb: nb.cells[3].update(source="slider.observe(lambda c: setattr(label, 'value', c.new))"))
    assert notebook_problems(notebook) == []


def test_kernel_and_parameters_cell_count_are_checked(tmp_path):
    kernel = {"name": "lrfr-env", "display_name": "lrfr", "language": "python"}
    notebook = edit(write_chapter(tmp_path), lambda nb: nb.metadata.update(kernelspec=kernel))
    assert notebook_problems(notebook) == ["kernelspec name is 'lrfr-env', expected 'python3'"]
    edit(notebook, lambda nb: (nb.metadata.kernelspec.update(name="python3"),
                               nb.cells[2].metadata.update(tags=["parameters"])))
    assert notebook_problems(notebook) == ["2 cells are tagged 'parameters', expected exactly one"]


@pytest.mark.parametrize("line, problem", [
    ("epochs = 2  # training epochs", "parameter 'epochs' has no type annotation"),
    ("epochs: int = 2", "parameter 'epochs' has no trailing `# meaning` comment"),
    ("epochs: int | None = 2  # training epochs", "parameter 'epochs' is invisible to papermill --help-notebook"),
])
def test_every_parameter_needs_a_type_and_a_comment(tmp_path, line, problem):
    notebook = write_chapter(tmp_path, parameters=f'data_root: str = ""  # dataset folder\n{line}')
    problems = notebook_problems(notebook)
    assert len(problems) == 1 and problems[0].startswith(problem)


def test_parameter_files_must_exist_and_set_only_defined_names(tmp_path):
    notebook = write_chapter(tmp_path, params={"smoke": "epochs: 1\n", "quick": "epochs: 1\nepoch: 3\n"})
    assert notebook_problems(notebook) == [
        "toy.quick.yaml sets ['epoch'], which the parameters cell does not define (['data_root', 'epochs'])",
        f"missing parameter file {tmp_path / 'params' / 'toy.full.yaml'}",
    ]

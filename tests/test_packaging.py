"""The project's own files install and run everything: pyproject, environment.yml, Makefile, CI."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_pyproject_dependency_is_in_environment_yml():
    project = pyproject()["project"]
    required = list(project["dependencies"]) + [d for deps in project["optional-dependencies"].values() for d in deps]
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    missing = [requirement for requirement in required if requirement not in pip_section]
    assert not missing, f"add to environment.yml: {missing}"


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~ \[]", d)[0].lower() for d in requirements}


def test_the_user_named_dependencies_are_declared_in_the_core_or_their_extra():
    project = pyproject()["project"]
    extras = {name: _names(deps) for name, deps in project["optional-dependencies"].items()}
    assert {"torch", "numpy", "safetensors", "pydantic"} <= _names(project["dependencies"])
    assert {"jupyterlab", "jupyter-book", "papermill", "plotly", "umap-learn", "ipywidgets", "pandas"} <= extras["book"]
    assert {"streamlit", "plotly", "pandas"} <= extras["dashboard"]
    assert extras["faiss"] == {"faiss-cpu"} and "dlib-bin" in extras["dlib"] and "pytest" in extras["test"]


def test_the_core_pulls_no_notebook_server_dashboard_or_plotting_library():
    heavy = {"streamlit", "jupyterlab", "jupyter-book", "papermill", "ipykernel", "ipywidgets", "plotly",
             "umap-learn", "pandas", "faiss-cpu", "dlib-bin"}
    assert not heavy & _names(pyproject()["project"]["dependencies"])


def test_no_core_module_imports_an_extra_at_module_level():
    """``import lrfr`` and every core module load without the extras: an extra is imported inside the
    function that needs it (lrfr.plots, whose package imports plotly, is the book's and the dashboard's own code)."""
    extras = {"streamlit", "plotly", "pandas", "sklearn", "umap", "papermill", "nbformat", "IPython", "faiss",
              "dlib", "face_recognition_models", "skimage", "playwright", "jupyter_book", "ipywidgets", "mathjax"}
    offending = []
    for path in (ROOT / "lrfr").rglob("*.py"):
        if path.parent.name == "plots":
            continue
        for node in ast.parse(path.read_text()).body:  # module level only
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offending += [f"{path.relative_to(ROOT)}: {n}" for n in names
                          if n.split(".")[0] in extras or n.startswith("lrfr.plots")]
    assert not offending, offending


def test_console_command_and_torch_requirement_admit_the_local_cpu_build():
    project = pyproject()["project"]
    assert project["scripts"]["lrfr"] == "lrfr.cli:main"
    torch_requirement = next(d for d in project["dependencies"] if d.startswith("torch"))
    assert torch_requirement == "torch>=2.4"  # met by the CPU wheel installed first (torch==2.13.0)


def test_makefile_installs_torch_before_the_project_and_each_target_its_extras():
    makefile = (ROOT / "Makefile").read_text()
    torch_install = makefile.index('"$(TORCH_SPEC)"')
    project_install = makefile.index("install --quiet -e")
    assert torch_install < project_install
    assert "TORCH_SPEC ?= torch==2.13.0" in makefile
    extras = set(pyproject()["project"]["optional-dependencies"])
    assert set(re.search(r"^TEST_EXTRAS := (\S+)$", makefile, re.M).group(1).split(",")) == extras
    wanted = {"book": "book", "test": "$(TEST_EXTRAS)", "dashboard": "dashboard", "bench": "core", "gpu-check": "core"}
    for target, stamp in wanted.items():
        assert re.search(rf"^{target}: \$\(call stamp,{re.escape(stamp)}\)", makefile, re.M), target


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme and "make dashboard" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)

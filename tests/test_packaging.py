"""The project's own files install and run everything: pyproject, environment.yml, Makefile, CI."""

from __future__ import annotations

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


def test_the_user_named_dependencies_are_declared():
    names = {re.split(r"[<>=!~ ]", d)[0].lower() for d in pyproject()["project"]["dependencies"]}
    wanted = {"jupyterlab", "jupyter-book", "papermill", "torch", "numpy", "plotly", "streamlit", "umap-learn", "ipywidgets"}
    assert wanted <= names, wanted - names


def test_console_command_and_torch_requirement_admit_the_local_cpu_build():
    project = pyproject()["project"]
    assert project["scripts"]["lrfr"] == "lrfr.cli:main"
    torch_requirement = next(d for d in project["dependencies"] if d.startswith("torch"))
    assert torch_requirement == "torch>=2.4"  # met by the CPU wheel installed first (torch==2.13.0)


def test_makefile_installs_torch_before_the_project():
    makefile = (ROOT / "Makefile").read_text()
    torch_install = makefile.index('"$(TORCH_SPEC)"')
    project_install = makefile.index('install --quiet -e ".[test,dlib]"')
    assert torch_install < project_install
    assert "TORCH_SPEC ?= torch==2.13.0" in makefile
    for target in ("book:", "test:", "dashboard:"):
        assert re.search(rf"^{target}", makefile, re.M), target


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme and "make dashboard" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)

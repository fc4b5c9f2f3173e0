"""``lrfr book``: execute the chapters with papermill, then build the HTML with jupyter-book.

The chapters (``book/*.ipynb`` listed in ``_toc.yml``) are committed without outputs. Each is executed
by papermill with its parameter file ``book/params/<chapter>.<mode>.yaml`` into a staging copy of the
book under ``_build/src``; jupyter-book (``execute_notebooks: off``) then renders that staging copy to
``_build/html``. Sources are never modified.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import yaml
from tqdm.auto import tqdm

MODES = ("quick", "full")


class ChapterError(RuntimeError):
    """A chapter failed to execute; the message names the chapter and the failing cell."""


def toc_entries(root: Path) -> list[str]:
    """Every ``file`` / ``root`` entry of ``_toc.yml``, in reading order (paths without suffix)."""
    toc_path = root / "_toc.yml"
    if not toc_path.is_file():
        raise FileNotFoundError(f"{toc_path} not found: expected the book's table of contents there")
    toc = yaml.safe_load(toc_path.read_text())
    return [toc["root"], *_files(toc)]


def _files(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        if "file" in node:
            yield node["file"]
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key, []):
                yield from _files(child)


def chapters(root: Path) -> list[Path]:
    """The notebooks of the book, in table-of-contents order."""
    return [root / f"{entry}.ipynb" for entry in toc_entries(root) if (root / f"{entry}.ipynb").is_file()]


def parameters(notebook: Path, mode: str) -> dict:
    """The papermill parameters of ``notebook`` in ``mode`` (``book/params/<name>.<mode>.yaml``)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    path = notebook.parent / "params" / f"{notebook.stem}.{mode}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"chapter {notebook.stem!r} has no {mode} parameter file (expected {path})")
    return yaml.safe_load(path.read_text()) or {}


def execute_chapter(notebook: Path, output: Path, mode: str, cwd: Path) -> None:
    """Run one chapter with papermill; on failure raise :class:`ChapterError` naming the cell."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters=parameters(notebook, mode),
            kernel_name="python3", cwd=str(cwd), progress_bar=True,
        )
    except PapermillExecutionError as error:
        raise ChapterError(
            f"chapter {notebook.stem!r} ({mode} mode) failed in cell {error.exec_count} "
            f"(cell index {error.cell_index}): {error.ename}: {error.evalue}. "
            f"The partly executed notebook is at {output}"
        ) from None


def stage_sources(root: Path, staging: Path) -> None:
    """Copy the book's configuration and non-notebook pages into a fresh staging folder."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, staging / name)
    shutil.copytree(
        root / "book", staging / "book", ignore=shutil.ignore_patterns("*.ipynb", "params", ".ipynb_checkpoints")
    )


def build(root: Path, mode: str = "quick", only: list[str] | None = None) -> Path:
    """Execute the chapters (all, or those named in ``only``) and build the HTML; return index.html."""
    root = root.resolve()
    build_dir = root / "_build"
    staging = build_dir / "src"
    stage_sources(root, staging)
    notebooks = chapters(root)
    unknown = sorted(set(only or []) - {nb.stem for nb in notebooks})
    if unknown:
        raise ValueError(f"unknown chapter(s) {unknown}; the book has {[nb.stem for nb in notebooks]}")
    for notebook in tqdm(notebooks, desc=f"chapters ({mode})", unit="chapter"):
        target = staging / notebook.relative_to(root)
        if only and notebook.stem not in only:
            shutil.copy2(notebook, target)  # rendered without outputs
            continue
        execute_chapter(notebook, target, mode, cwd=root)
    subprocess.run(
        [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
         "build", str(staging), "--path-output", str(root)],
        check=True,
    )
    index = build_dir / "html" / "index.html"
    if not index.is_file():
        raise RuntimeError(f"jupyter-book finished but {index} was not written")
    return index

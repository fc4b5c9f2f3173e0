"""``lrfr book``: execute the chapters with papermill, then build the HTML with jupyter-book.

The chapters (``book/*.ipynb`` listed in ``_toc.yml``) are committed without outputs. Each is executed
by papermill with its parameter file ``book/params/<chapter>.<mode>.yaml`` into a staging copy of the
book under ``_build/src``; jupyter-book (``execute_notebooks: off``) then renders that staging copy to
``_build/html``. Sources are never modified.

Modes (:data:`MODES`): ``smoke`` runs every cell on tiny data (the test suite builds the book this
way), ``quick`` is the CPU book on synthetic data, ``full`` the papers' setting on real data.

Offline pages. Plotly figures (shown with :func:`lrfr.plots.display.show`) call the global ``Plotly``:
the build copies the plotly.min.js of the installed ``plotly`` package into the staging folder's
``_lrfr_static/``, which ``_config.yml`` adds to sphinx's static path and loads first on every page.
Equations: the MathJax 3 build of the installed ``django-static-mathjax`` package (a plain PyPI
package of MathJax's files; no Django involved) is copied to ``_lrfr_static/mathjax/`` and
``_config.yml`` points sphinx's ``mathjax_path`` there. So the HTML needs no CDN.

Readable pages. In the staged copy every code cell but the parameters (and papermill's injected
parameters) is tagged ``hide-input``: the page reads as text and results, each cell's code behind a
toggle. The sources are not modified.

Claims. After the chapters run, the newest ``claims.json`` (:mod:`lrfr.claims`) of each chapter under
its ``results_root`` is collected (an executed chapter's only if written during this build) into
``_build/claims.jsonl`` (one line per claim) and into the scorecard page ``book/scorecard.md``, whose
:data:`SCORECARD_MARKER` line is replaced by the table. Each executed chapter's wall time is printed
and written to ``_build/timings.jsonl``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import yaml
from tqdm.auto import tqdm

MODES = ("smoke", "quick", "full")  # smoke: the pipeline on tiny data (the tests); quick: CPU, synthetic; full: the papers
STATIC = "_lrfr_static"  # staged static folder; _config.yml lists it in html_static_path
TIMINGS = "timings.jsonl"  # under _build/: one {"chapter", "mode", "seconds"} object per executed chapter
CLAIMS = "claims.jsonl"  # under _build/: one object per claim of every chapter (lrfr.claims records)
SCORECARD = "book/scorecard.md"  # the page that shows every chapter's claims
SCORECARD_MARKER = "<!-- lrfr book: scorecard -->"  # replaced by the table in the staged copy
VISIBLE_TAGS = ("parameters", "injected-parameters")  # code cells shown unfolded


class ChapterError(RuntimeError):
    """A chapter failed to execute; the message names the chapter and the failing cell."""


class ParameterError(ValueError):
    """A chapter's parameter file names a parameter the notebook does not declare, or gives one a value
    of another type than its declaration; the message names the file, the parameter and what is expected."""


def toc_entries(root: Path) -> list[str]:
    """Every ``file`` / ``root`` entry of ``_toc.yml``, in reading order (paths without suffix)."""
    toc_path = root / "_toc.yml"
    if not toc_path.is_file():
        raise FileNotFoundError(f"{toc_path} not found: expected the book's table of contents there")
    try:
        toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ValueError(f"{toc_path} is not readable YAML ({error}); expected jupyter-book's table of contents") from None
    if not isinstance(toc, dict) or not isinstance(toc.get("root"), str):
        raise ValueError(f"{toc_path} has no 'root' page; expected jupyter-book's table of contents (root: <page>, chapters: ...)")
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
    """The papermill parameters of ``notebook`` in ``mode`` (``book/params/<name>.<mode>.yaml``), checked
    against the notebook's ``parameters`` cell (:func:`check_parameters`)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    path = notebook.parent / "params" / f"{notebook.stem}.{mode}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"chapter {notebook.stem!r} has no {mode} parameter file (expected {path})")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ParameterError(f"{path} is not readable YAML ({error}); expected 'name: value' lines") from None
    if values is not None and not isinstance(values, dict):
        raise ParameterError(f"{path} holds a YAML {type(values).__name__}; expected a mapping of 'name: value' lines")
    check_parameters(notebook, values or {}, str(path))
    return values or {}


def check_parameters(notebook: Path, values: dict, source: str) -> None:
    """:class:`ParameterError` unless every name in ``values`` is declared in ``notebook``'s ``parameters``
    cell and its value fits the declared type (``int``, ``float``, ``str``, ``bool``, ``list``, ``dict``,
    ``Optional[...]``; an undeclared type accepts anything). ``source`` names where the values came from."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise ParameterError(
            f"{source}: chapter {notebook.stem!r} has no parameter(s) {', '.join(map(repr, unknown))}; "
            f"its parameters are {', '.join(declared) or 'none'}"
        )
    for name, value in values.items():
        expected = declared[name]["inferred_type_name"]
        if not _fits(value, expected):
            raise ParameterError(
                f"{source}: parameter {name!r} of chapter {notebook.stem!r} is {type(value).__name__} {value!r}; "
                f"expected {expected} (declared as {name}: {expected} = {declared[name]['default']})"
            )


_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "list": (list,), "tuple": (list, tuple),
          "dict": (dict,), "none": (type(None),)}


def _fits(value: object, type_name: str) -> bool:
    """Whether ``value`` (as YAML read it) fits a papermill-inferred type name such as ``Optional[str]``."""
    name = type_name.replace(" ", "")
    optional = re.fullmatch(r"(?:typing\.)?Optional\[(.+)\]", name)
    if optional:
        return value is None or _fits(value, optional.group(1))
    union = re.fullmatch(r"(?:typing\.)?Union\[([^\[\]]+)\]", name)
    if "|" in name or union:
        return any(_fits(value, part) for part in (union.group(1).split(",") if union else name.split("|")))
    base = re.sub(r"\[.*\]$", "", name).removeprefix("typing.").lower()
    if base not in _TYPES or name == "None":  # "None": papermill's word for an unannotated parameter
        return True
    if isinstance(value, bool) and bool not in _TYPES[base]:
        return False
    return isinstance(value, _TYPES[base])


def execute_chapter(notebook: Path, output: Path, mode: str, cwd: Path, overrides: dict | None = None) -> None:
    """Run one chapter with papermill (its ``mode`` parameters, then ``overrides``); on failure raise
    :class:`ChapterError` naming the cell."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters={**parameters(notebook, mode), **(overrides or {})},
            kernel_name="python3", cwd=str(cwd), progress_bar=True,
        )
    except PapermillExecutionError as error:
        raise ChapterError(
            f"chapter {notebook.stem!r} ({mode} mode) failed in cell {error.exec_count} "
            f"(cell index {error.cell_index}): {error.ename}: {error.evalue}. "
            f"The partly executed notebook is at {output}"
        ) from None
    drop_widget_state(output)


def drop_widget_state(notebook: Path) -> None:
    """Remove saved ipywidgets state, which the book cannot use (widgets are for JupyterLab only).

    nbclient saves it by default (turning that off breaks ``interact`` output widgets); left in, myst-nb
    would embed it in the page and, unless ``nb_ipywidgets_js`` is empty, load require.js from a CDN.
    """
    import nbformat

    executed = nbformat.read(notebook, as_version=4)
    if executed.metadata.pop("widgets", None) is not None:
        nbformat.write(executed, notebook)


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
    (staging / STATIC).mkdir()
    shutil.copy2(plotly_js(), staging / STATIC / "plotly.min.js")
    shutil.copytree(mathjax_dir(), staging / STATIC / "mathjax", ignore=shutil.ignore_patterns(*_UNUSED_MATHJAX))


# MathJax bundles and files the book does not load (it loads tex-mml-chtml.js, which fetches its fonts,
# TeX extensions, menu and accessibility parts from the folders beside it)
_UNUSED_MATHJAX = ("tex-chtml*.js", "tex-svg*.js", "tex-mml-svg.js", "mml-*.js", "node-main.js", "svg")


def mathjax_dir() -> Path:
    """MathJax 3's es5 build folder as the ``django-static-mathjax`` package installs it."""
    try:
        import mathjax
    except ImportError:
        raise FileNotFoundError("MathJax not found: the book needs the django-static-mathjax package "
                                "(pip install django-static-mathjax, or make venv)") from None
    path = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (path / "tex-mml-chtml.js").is_file():
        raise FileNotFoundError(f"{path / 'tex-mml-chtml.js'} not found: reinstall the django-static-mathjax package")
    return path


def fold_code(notebook: Path) -> None:
    """Tag every code cell of ``notebook`` but the parameter cells (:data:`VISIBLE_TAGS`) ``hide-input``,
    in place: jupyter-book then shows its outputs with the code behind a toggle."""
    import nbformat

    book = nbformat.read(notebook, as_version=4)
    for cell in book.cells:
        tags = cell.metadata.setdefault("tags", [])
        if cell.cell_type == "code" and not set(tags) & {*VISIBLE_TAGS, "hide-input", "remove-input", "remove-cell"}:
            tags.append("hide-input")
    nbformat.write(book, notebook)


def plotly_js() -> Path:
    """The plotly.min.js bundled with the installed ``plotly`` package (the version its figures target)."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"plotly.min.js not found at {path}: reinstall the plotly package")
    return path


def timings(root: Path) -> list[dict]:
    """The chapter timings of the last build under ``root`` (``_build/timings.jsonl``)."""
    return _read_jsonl(root / "_build" / TIMINGS)


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def check_arguments(root: Path, mode: str, only: list[str] | None = None, overrides: dict | None = None) -> list[Path]:
    """The book's chapters, after checking every argument of :func:`build` (nothing is touched).

    The root must hold the book, ``mode`` be one of :data:`MODES`, every name in ``only`` be a chapter,
    and every chapter to execute have a valid parameter file for ``mode`` (see :func:`parameters`) and
    declare every parameter of ``overrides`` with a type its value fits.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    missing = [name for name in ("_config.yml", "_toc.yml", "book") if not (root / name).exists()]
    if missing:
        raise FileNotFoundError(f"{root} is not the book's repository root: it has no {', '.join(missing)}")
    notebooks = chapters(root)
    unknown = sorted(set(only or []) - {nb.stem for nb in notebooks})
    if unknown:
        raise ValueError(f"unknown chapter(s) {unknown}; the book has {[nb.stem for nb in notebooks]}")
    for notebook in notebooks:
        if not only or notebook.stem in only:
            parameters(notebook, mode)
            check_parameters(notebook, overrides or {}, "lrfr book -p")
    return notebooks


def build(root: Path, mode: str = "quick", only: list[str] | None = None, overrides: dict | None = None) -> Path:
    """Execute the chapters (all, or those named in ``only``; parameters of ``mode`` with ``overrides``
    on top) and build the HTML; return index.html.

    Every argument is checked (:func:`check_arguments`) before ``_build`` is touched.
    """
    root = root.resolve()
    notebooks = check_arguments(root, mode, only, overrides)
    build_dir = root / "_build"
    staging = build_dir / "src"
    stage_sources(root, staging)
    timings_path = build_dir / TIMINGS
    timings_path.unlink(missing_ok=True)
    build_started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for notebook in tqdm(notebooks, desc=f"chapters ({mode})", unit="chapter"):
        target = staging / notebook.relative_to(root)
        if only and notebook.stem not in only:
            shutil.copy2(notebook, target)  # rendered without outputs
        else:
            started = time.perf_counter()
            execute_chapter(notebook, target, mode, cwd=root, overrides=overrides)
            record = {"chapter": notebook.stem, "mode": mode, "seconds": round(time.perf_counter() - started, 2)}
            tqdm.write(f"{record['chapter']} ({mode}): {record['seconds']:.1f} s", file=sys.stderr)
            with timings_path.open("a") as stream:
                stream.write(json.dumps(record) + "\n")
        fold_code(target)
    executed = [nb for nb in notebooks if not only or nb.stem in only]
    write_scorecard(root, staging, collect_claims(root, notebooks, executed, mode, overrides, build_started))
    render_html(staging, root)
    index = build_dir / "html" / "index.html"
    if not index.is_file():
        raise RuntimeError(f"jupyter-book finished but {index} was not written")
    return index


def collect_claims(root: Path, notebooks: list[Path], executed: list[Path], mode: str, overrides: dict | None,
                   since: str) -> list:
    """The newest ``claims.json`` of each chapter under the chapters' ``results_root`` folders (relative
    to ``root``), written to ``_build/claims.jsonl``; an executed chapter's counts only if written at or
    after ``since`` (an ISO time: this build's start), so a stale file never passes for this build's."""
    from lrfr.claims import find_claims

    results_roots = {_results_root(root, nb, mode, overrides if nb in executed else None) for nb in notebooks}
    chapters_by_name = {nb.stem: nb for nb in notebooks}
    found: dict = {}
    for folder in sorted(results_roots):
        for claims in find_claims(folder) if folder.is_dir() else []:
            notebook = chapters_by_name.get(claims.chapter)
            if notebook is None or (notebook in executed and claims.written < since):
                continue
            if claims.chapter not in found or claims.written >= found[claims.chapter].written:
                found[claims.chapter] = claims
    collected = [found[nb.stem] for nb in notebooks if nb.stem in found]
    with (root / "_build" / CLAIMS).open("w") as stream:
        for chapter in collected:
            for record in chapter.claims:
                stream.write(json.dumps({"chapter": chapter.chapter, "mode": chapter.mode, "data": chapter.data,
                                         "written": chapter.written, **record}) + "\n")
    return collected


def _results_root(root: Path, notebook: Path, mode: str, overrides: dict | None) -> Path:
    """The folder (under ``root``) where ``notebook`` writes its run folders in ``mode``."""
    has_file = (notebook.parent / "params" / f"{notebook.stem}.{mode}.yaml").is_file()
    values = {**(parameters(notebook, mode) if has_file else {}), **(overrides or {})}
    return root / values.get("results_root", "results")


def write_scorecard(root: Path, staging: Path, collected: list) -> None:
    """Replace the :data:`SCORECARD_MARKER` line of the staged scorecard page by the claims table."""
    from lrfr.claims import scorecard_markdown

    page = staging / SCORECARD
    if not page.is_file():
        return
    text = page.read_text(encoding="utf-8")
    if SCORECARD_MARKER not in text:
        raise ValueError(f"{root / SCORECARD} has no line {SCORECARD_MARKER!r}; expected it where the scorecard goes")
    page.write_text(text.replace(SCORECARD_MARKER, scorecard_markdown(collected)), encoding="utf-8")


def claim_records(root: Path) -> list[dict]:
    """The claims of the last build under ``root`` (``_build/claims.jsonl``), one dict per claim."""
    return _read_jsonl(root / "_build" / CLAIMS)


def render_html(staging: Path, root: Path) -> None:
    """Run jupyter-book on the staged sources; its log goes to stderr (stdout stays for results)."""
    result = subprocess.run(
        [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
         "build", str(staging), "--path-output", str(root)],
        capture_output=True, text=True,
    )
    sys.stderr.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"jupyter-book failed to build {staging} (exit {result.returncode}); its log is above")

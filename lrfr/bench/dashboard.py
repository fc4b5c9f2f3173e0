"""``lrfr bench dashboard``: the dashboard's response times, through Streamlit's AppTest and a real browser.

Writes a synthetic run folder (:func:`write_synthetic_run`, 20,000 embeddings by default, with a
stored PCA projection) into a temporary results root, then times in one process, as the server would:
loading the run (first render, nothing cached), a selection of faces, changing the colouring, and the
Eq. 8 control. With ``--browser`` (needs Debian's /usr/bin/chromium and the playwright package) it also
times, in chromium against a running server, the page load until the projection is drawn, and box
selections from the mouse release until the new selection's count and faces are shown (``drag_seconds``:
the drag gesture before it, during which plotly redraws the live box). One JSON line per measurement,
with the issue's limit (3 s to load, 1 s per selection).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lrfr.bench import BENCHMARKS, emit
from lrfr.bench.train import cpu_name
from lrfr.data.synthetic import SynthFace
from lrfr.runs import RunFolder

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run")
STARTUP_S = 120
PAINTED = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"  # 2 frames drawn
EPS = 1e-7  # Eq. 3


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def synthetic_embeddings(identities: int, probes: int, gallery: int, distractors: int, ui: int, dim: int,
                         seed: int) -> dict[str, np.ndarray]:
    """Clusters per identity whose low-quality faces drift toward a UI center, plus distractors and UI faces.

    A face of quality q in (0, 1) is normalise(q c + (1 - q) u + 0.45 n) (c its identity's unit
    center, u the UI center, n a random unit vector); distractors have no identity, UI faces have q
    near 0. Returns embeddings, labels, split, native_height, ri_target (Eq. 3 with the identity
    centers as prototypes, NaN without identity), ri_learned (ri_target with noise), ui_distance, quality.
    """
    rng = np.random.default_rng(seed)
    centers, u = _unit(rng.standard_normal((identities, dim))), _unit(rng.standard_normal(dim))
    per_identity = probes + gallery
    labels = np.concatenate([np.repeat(np.arange(identities), per_identity), np.full(distractors + ui, -1)])
    split = np.array(["probe"] * probes + ["gallery"] * gallery, dtype=object)
    split = np.concatenate([np.tile(split, identities), ["distractor"] * distractors, ["ui"] * ui]).astype(str)
    quality = np.concatenate([rng.beta(2.5, 1.5, len(labels) - ui), rng.uniform(0.0, 0.08, ui)])
    own = np.where(labels[:, None] >= 0, centers[np.maximum(labels, 0)], _unit(rng.standard_normal((len(labels), dim))))
    noise = _unit(rng.standard_normal((len(labels), dim)))
    vectors = _unit(quality[:, None] * own + (1 - quality[:, None]) * u + 0.45 * noise).astype(np.float32)
    cosines = vectors @ centers.T
    labelled = labels >= 0
    d_p = 1 - np.where(labelled, cosines[np.arange(len(labels)), np.maximum(labels, 0)], np.nan)
    cosines[labelled, labels[labelled]] = -np.inf
    d_n, d_ui = 1 - cosines.max(1), 1 - vectors @ u
    ri_target = d_ui * d_n / (d_p + EPS)
    ri_learned = np.where(labelled, ri_target, d_ui * d_n / 0.8) * np.exp(0.15 * rng.standard_normal(len(labels)))
    return {"embeddings": vectors, "labels": labels, "split": split, "quality": quality,
            "native_height": np.rint(6 + 26 * quality).astype(np.int64), "ri_target": ri_target,
            "ri_learned": ri_learned, "ui_distance": d_ui, "center": u.astype(np.float32)}


def write_faces(folder: Path, labels: np.ndarray, heights: np.ndarray, count: int, seed: int) -> list[str]:
    """The first ``count`` faces as PNGs at their native heights (SynthFace; UI/distractor faces without identity).

    Returns a path per face; faces from ``count`` on reuse the files cyclically (to keep big runs fast to write).
    """
    folder.mkdir(parents=True, exist_ok=True)
    generator = SynthFace(seed=seed)
    shown = np.arange(min(count, len(labels)))
    identities = np.where(labels[shown] >= 0, labels[shown], 100_000 + shown)
    renders = generator.render_hr(identities, shown)
    paths = []
    for index, (image, height) in enumerate(zip(renders, heights[shown])):
        path = folder / f"{index:06d}.png"
        Image.fromarray(image).resize((int(height), int(height)), Image.BICUBIC).save(path)
        paths.append(str(path.resolve()))
    return [paths[index % len(paths)] for index in range(len(labels))]


def write_synthetic_run(root: str | Path, name: str = "synthetic", *, identities: int = 12, probes: int = 3,
                        gallery: int = 5, distractors: int = 40, ui: int = 24, dim: int = 32, images: int = 1000,
                        projection: bool = True, center: bool = True, seed: int = 0) -> RunFolder:
    """A run folder following the dashboard's contract: embedding set "test" with metadata, faces, UI center, PCA.

    ``images`` distinct face files are written under ``root/faces/<name>``; ``center`` writes
    ``ui_center.json``; ``projection`` stores the 2-D PCA projection.
    """
    data = synthetic_embeddings(identities, probes, gallery, distractors, ui, dim, seed)
    run = RunFolder.create(root, name, {"kind": "synthetic dashboard run", "identities": identities, "dim": dim}, seed=seed)
    paths = write_faces(Path(root) / "faces" / name, data["labels"], data["native_height"], images, seed)
    metadata = {key: data[key] for key in ("split", "native_height", "ri_learned", "ri_target", "ui_distance")}
    run.save_embeddings("test", data["embeddings"], data["labels"], {"path": np.array(paths, dtype=object), **metadata})
    if center:
        run.write_json("ui_center.json", {"center": data["center"].tolist(), "embedding_set": "test",
                                          "source": "synthetic UI direction"})
    if projection:
        from lrfr.plots.projections import project, save_projection  # the dashboard extra (scikit-learn)

        save_projection(run, "test", "pca", 2, project(data["embeddings"], "pca", 2))
    run.write_metrics({"train_history": [{"epoch": 1, "cls/ce": 2.0, "loss": 2.0}, {"epoch": 2, "cls/ce": 1.2, "loss": 1.2}]})
    return run


def _timed(app, repeats: int = 1) -> float:
    """Best wall seconds of ``app.run()`` over ``repeats``; raises if the script raised."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        app.run()
        best = min(best, time.perf_counter() - started)
        if app.exception:
            raise RuntimeError(f"the dashboard raised: {app.exception[0].message}")
    return round(best, 3)


def measure(root: Path, faces: int, selected: int) -> list[dict]:
    """Time the dashboard's first render of the run, then a selection, a colouring change and the Eq. 8 control."""
    from streamlit.testing.v1 import AppTest

    os.environ["LRFR_RESULTS"] = str(root)
    app = AppTest.from_file(str(APP), default_timeout=600)
    rows = np.random.default_rng(0).choice(faces, selected, replace=False).tolist()
    common = {"bench": "dashboard", "embeddings": faces, "device_name": cpu_name(), "threads": torch.get_num_threads()}
    records = [{**common, "measure": "load_run", "seconds": _timed(app), "limit_s": 3.0}]
    app.session_state["selected:primary"] = rows
    records.append({**common, "measure": "select", "selected": selected, "seconds": _timed(app), "limit_s": 1.0})
    app.selectbox(key="colour").select("rank-1 correct")
    records.append({**common, "measure": "recolour", "seconds": _timed(app), "limit_s": 1.0})
    app.slider(key="strength").set_value(1.0)
    records.append({**common, "measure": "eq8_rescore", "strength": 1.0, "seconds": _timed(app), "limit_s": None})
    app.session_state["selected:primary"] = rows[: selected // 2]
    records.append({**common, "measure": "select_again", "selected": selected // 2, "seconds": _timed(app), "limit_s": 1.0})
    for record in records:
        record["ok"] = record["limit_s"] is None or record["seconds"] <= record["limit_s"]
    return records


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serve(results: Path) -> Iterator[str]:
    """``streamlit run dashboard/app.py`` on 127.0.0.1 and a free port, reading ``results``; yields its URL."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", "127.0.0.1",
               "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--", "--results", str(results)]
    server = subprocess.Popen(command, cwd=APP.parents[1], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_healthy(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}: {server.stdout.read()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"streamlit did not answer on {url} within {STARTUP_S} s")


@contextlib.contextmanager
def chromium(profile: Path, height: int = 1400) -> Iterator:
    """A page of Debian's chromium (fresh profile ``profile``) driven by Playwright; never a downloaded browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), headless=True,
            viewport={"width": 1600, "height": height})
        try:
            yield browser.new_page()
        finally:
            browser.close()


def projection_drag_area(page):
    """The drag layer of the projection (the chart whose legend holds the UI center), once drawn."""
    area = page.locator(".js-plotly-plot").filter(has_text="UI center").first.locator(".nsewdrag").first
    area.wait_for(timeout=STARTUP_S * 1000)
    return area


def drag_box(page, area, start: float = 0.1, stop: float = 0.9, release: bool = True) -> None:
    """Drag a box from ``start`` to ``stop`` (fractions of the plot area; the chart's drag mode is box select).

    ``release=False`` keeps the button down: the selection is made by the caller's ``page.mouse.up()``.
    """
    box = area.bounding_box()
    page.mouse.move(box["x"] + start * box["width"], box["y"] + start * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + stop * box["width"], box["y"] + stop * box["height"], steps=8)
    if release:
        page.mouse.up()


def measure_browser(root: Path, faces: int, profile: Path) -> list[dict]:
    """Page load until the page is drawn, and box selections until the new selection's faces are shown."""
    common = {"bench": "dashboard", "via": "chromium", "embeddings": faces, "device_name": cpu_name()}
    records = []
    with serve(root) as url, chromium(profile) as page:
        page.goto(f"{url}/?run=warmup")  # the server's first run imports the libraries
        projection_drag_area(page)
        started = time.perf_counter()
        page.goto(f"{url}/?run=bench")
        area = projection_drag_area(page)
        page.get_by_text("select faces in the projection").wait_for(timeout=STARTUP_S * 1000)
        page.evaluate(PAINTED)
        records.append({**common, "measure": "load_run", "seconds": round(time.perf_counter() - started, 3), "limit_s": 3.0})
        for number, (start, stop) in enumerate(((0.45, 0.55), (0.3, 0.4), (0.5, 0.6)), 1):
            selected = page.locator('[data-testid="stMetricValue"]').nth(1)
            before = selected.inner_text()
            started = time.perf_counter()
            drag_box(page, area, start, stop, release=False)  # plotly redraws the live box at each move
            dragged = time.perf_counter()
            page.mouse.up()  # the selection is made: from here the app responds
            page.wait_for_function("([before]) => document.querySelectorAll('[data-testid=\"stMetricValue\"]')[1]"
                                   ".innerText !== before", arg=[before], timeout=60_000)
            page.locator("img.lrfr-thumb").first.wait_for()
            page.evaluate(PAINTED)
            records.append({**common, "measure": f"select_{number}", "selected": int(selected.inner_text()),
                            "seconds": round(time.perf_counter() - dragged, 3), "limit_s": 1.0,
                            "drag_seconds": round(dragged - started, 3)})
    for record in records:
        record["ok"] = record["seconds"] <= record["limit_s"]
    return records


@BENCHMARKS.register("dashboard")
def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lrfr bench dashboard", description=__doc__)
    parser.add_argument("--identities", type=int, default=1000, help="identities of 2 probes + 6 gallery faces each")
    parser.add_argument("--distractors", type=int, default=10000)
    parser.add_argument("--ui", type=int, default=2000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--selected", type=int, default=200, help="faces in the timed selection")
    parser.add_argument("--browser", action="store_true", help=f"also time it in chromium ({CHROMIUM})")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lrfr-bench-dashboard-") as folder:
        root = Path(folder)
        write_synthetic_run(root, "bench", identities=args.identities, probes=2, gallery=6, distractors=args.distractors,
                            ui=args.ui, dim=args.dim, images=256)
        faces = args.identities * 8 + args.distractors + args.ui
        for record in measure(root, faces, min(args.selected, faces)):
            emit({"via": "apptest", **record})
        if args.browser:
            write_synthetic_run(root, "warmup", images=20)
            for record in measure_browser(root, faces, root / "chromium-profile"):
                emit(record)

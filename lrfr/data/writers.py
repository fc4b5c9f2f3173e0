"""Write SynthFace datasets to disk in the real datasets' own layouts, so that the real loaders read them.

``write_synthetic(out, preset, seed)`` (the ``lrfr data synth`` command) writes under ``out``::

    hr/<identity>/<nnn>.jpg                       HR identity set standing in for CASIA-WebFace/VGGFace2 (112 px)
    tinyface/Training_Set/<id>/<id>_<n>.jpg       native LR, folder per identity
    tinyface/Testing_Set/{Probe,Gallery_Match}/<id>_<n>.jpg, Gallery_Distractor/<n>.jpg
        (Gallery_Match numbers continue after the probes': no two test files share a basename, as in the release)
    tinyface/Testing_Set/probe_img_ID_pairs.mat (probe_set, probe_ids),
        gallery_match_img_ID_pairs.mat (gallery_set, gallery_ids),
        gallery_distractor_img_names.mat (distractor_set)
    scface/mugshot_frontal_cropped_all/<id>_frontal.jpg            HR, ids 001..
    scface/surveillance_cameras_distance_<d>/cam<k>/<id>_cam<k>_<d>.jpg   native LR, d1 smallest
    survface/training_set/<id>/<id>_<n>.jpg
    survface/Face_Verification_Test_Set/verification_images/<id>_<n>.jpg,
        positive_pairs_names.mat (positive_pairs_names), negative_pairs_names.mat (negative_pairs_names)
    survface/Face_Identification_Test_Set/{gallery,mated_probe}/<id>_<n>.jpg, unmated_probe/<n>.jpg,
        gallery_img_ID_pairs.mat, mated_probe_img_ID_pairs.mat, unmated_probe_img_names.mat
    lfw/<name>/<name>_<nnnn>.jpg + pairs.txt      LFW format, 10 folds
    xqlfw/  same, each pair one HR side and one side degraded to 8..32 px and stored at 112 px
    ui/<n>.jpg                                    unrecognizable faces, no labels
    manifest.json                                 counts per dataset/split, seed, preset, generator version

Everything is written into a hidden sibling folder that is renamed to ``out`` only after
``manifest.json`` (written last) is in place, so an interrupted run leaves nothing that looks complete.
Each image is a pure function of (seed, identity, image), so the same seed gives identical files.
"""

from __future__ import annotations

import io
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import groupby
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

import numpy as np
import scipy.io
import torch
from PIL import Image
from tqdm.auto import tqdm

from lrfr.data.degrade import synthetic_lr
from lrfr.data.synthetic import VERSION as SYNTHFACE_VERSION
from lrfr.data.synthetic import SynthFace
from lrfr.io import atomic_folder, atomic_write, write_json_atomic, write_text_atomic

WRITER_VERSION = 2  # bumped when the written layout changes (2: TinyFace Gallery_Match basenames unique)
HR_SIZE = 112
JPEG_QUALITY = 95
CHUNK = 256
# Disjoint generator identity ranges per dataset (open-set: test identities never seen in training).
_OFFSET = {"hr": 0, "tinyface": 1_000_000, "scface": 2_000_000, "survface": 3_000_000, "lfw": 4_000_000}
SCFACE_HEIGHT = {1: 10, 2: 16, 3: 30}  # face height in px at 4.2 m, 2.6 m, 1.0 m
SCFACE_CAMERA_SCALE = (1.0, 0.9, 1.1, 0.85, 1.15)  # per-camera optics, cam1..cam5
XQLFW_SIZES = (8, 10, 12, 14, 16, 20, 24, 32)
MAT_HEADER = b"MATLAB 5.0 MAT-file, written by lrfr.data.writers".ljust(116)


class Generator(Protocol):
    """The part of :class:`lrfr.data.synthetic.SynthFace` the writers use."""

    def render_hr(self, identities: Sequence[int], images: Sequence[int], size: int = ...) -> np.ndarray: ...
    def native_lr(self, identities: Sequence[int], images: Sequence[int], heights: Sequence[int] | None = ...) -> list[np.ndarray]: ...
    def render_ui(self, indices: Sequence[int]) -> list[np.ndarray]: ...


@dataclass(frozen=True)
class Preset:
    """Dataset sizes (identities x images per identity unless named otherwise)."""

    hr_identities: int
    hr_images: int
    tinyface_train_identities: int
    tinyface_train_images: int
    tinyface_test_identities: int
    tinyface_test_images: int  # split half probe, half gallery
    tinyface_distractors: int
    scface_subjects: int
    survface_train_identities: int
    survface_train_images: int
    survface_verification_identities: int  # one genuine and one impostor pair each
    survface_gallery_identities: int  # 2 gallery + 2 mated probe images each
    survface_unmated: int
    lfw_pairs: int  # genuine (and impostor) pairs per fold; 10 folds
    ui_images: int


PRESETS: dict[str, Preset] = {
    "tiny": Preset(6, 3, 5, 3, 5, 4, 8, 3, 4, 3, 4, 3, 5, 2, 12),
    "quick": Preset(800, 12, 300, 4, 600, 4, 1_000, 130, 150, 4, 150, 100, 200, 50, 300),
    "full": Preset(10_000, 30, 2_570, 6, 2_569, 6, 20_000, 130, 5_000, 8, 3_000, 1_000, 10_000, 300, 10_000),
}


@dataclass(frozen=True)
class ImageJob:
    """One image to render: where it goes, how it is made and the dataset identity it shows.

    ``kind``: "hr" (112 px render), "native" (camera chain at face height ``size``; None lets the
    generator draw a TinyFace-like height), "degraded" (bicubic to ``size`` px and back to 112; None
    keeps HR) or "ui" (``identity`` is the UI index).
    """

    path: str
    kind: str
    identity: int
    image: int
    label: str | None = None
    size: int | None = None


@dataclass
class Plan:
    """What one dataset writes: images, side files (text, .mat) and its counts for the manifest."""

    jobs: list[ImageJob]
    counts: dict[str, Any]
    texts: dict[str, str]
    mats: dict[str, dict[str, np.ndarray]]


def _split_count(jobs: Sequence[ImageJob]) -> dict[str, int]:
    labelled = {j.label for j in jobs if j.label is not None}
    return {"images": len(jobs), "identities": len(labelled)}


def _names_cell(names: Sequence[str], columns: int = 1) -> np.ndarray:
    """A MATLAB cell array of strings (n x columns) for ``scipy.io.savemat``."""
    cell = np.empty(len(names), dtype=object)
    cell[:] = list(names)
    return cell.reshape(-1, columns)


def _file_names(jobs: Sequence[ImageJob]) -> np.ndarray:
    """The jobs' file names (without folder) as a cell column."""
    return _names_cell([Path(j.path).name for j in jobs])


def _id_table(jobs: Sequence[ImageJob], name: str) -> dict[str, np.ndarray]:
    """``<name>_set`` (cell of file names) and ``<name>_ids`` (double column) as in TinyFace's release."""
    return {
        f"{name}_set": _file_names(jobs),
        f"{name}_ids": np.array([[float(j.label)] for j in jobs], dtype=np.float64).reshape(-1, 1),
    }


def _identity_images(
    kind: str, folder: str, names: Sequence[str], first: int, images: int, start: int = 0
) -> list[ImageJob]:
    """Jobs ``<folder>/<name>_<n>.jpg`` (``folder`` may contain ``{name}``) showing images
    ``start..start+images-1`` of the consecutive generator identities ``first, first+1, ...``, numbered
    ``n = start+1 ..`` (so two parts of one identity's images never share a file name)."""
    return [
        ImageJob(f"{folder.format(name=name)}/{name}_{start + n + 1}.jpg", kind, first + i, start + n, name)
        for i, name in enumerate(names)
        for n in range(images)
    ]


def _numbered(kind: str, folder: str, first: int, count: int) -> list[ImageJob]:
    """``count`` images without identity, ``<folder>/<n>.jpg`` (n from 1), each of its own generator identity."""
    return [ImageJob(f"{folder}/{n + 1}.jpg", kind, first + n, 0) for n in range(count)]


def _names(start: int, count: int) -> list[str]:
    """Numeric identity names ``start+1 .. start+count`` (TinyFace/SurvFace style)."""
    return [str(start + i + 1) for i in range(count)]


def plan_hr(p: Preset, seed: int) -> Plan:
    jobs = [
        ImageJob(f"hr/{i:07d}/{n:03d}.jpg", "hr", _OFFSET["hr"] + i, n, f"{i:07d}")
        for i in range(p.hr_identities)
        for n in range(p.hr_images)
    ]
    return Plan(jobs, {"train": _split_count(jobs)}, {}, {})


def plan_tinyface(p: Preset, seed: int) -> Plan:
    """Training identities 1..n, test identities after them; half of each test identity's images probe."""
    test, offset = "tinyface/Testing_Set", _OFFSET["tinyface"]
    train_count, test_count = p.tinyface_train_identities, p.tinyface_test_identities
    train_names = _names(0, train_count)
    train = _identity_images("native", "tinyface/Training_Set/{name}", train_names, offset, p.tinyface_train_images)
    test_names = _names(train_count, test_count)
    half = (p.tinyface_test_images + 1) // 2
    probe = _identity_images("native", f"{test}/Probe", test_names, offset + train_count, half)
    rest = p.tinyface_test_images - half
    gallery = _identity_images("native", f"{test}/Gallery_Match", test_names, offset + train_count, rest, half)
    first_distractor = offset + train_count + test_count
    distractors = _numbered("native", f"{test}/Gallery_Distractor", first_distractor, p.tinyface_distractors)
    mats = {
        f"{test}/probe_img_ID_pairs.mat": _id_table(probe, "probe"),
        f"{test}/gallery_match_img_ID_pairs.mat": _id_table(gallery, "gallery"),
        f"{test}/gallery_distractor_img_names.mat": {"distractor_set": _file_names(distractors)},
    }
    splits = {"train": train, "probe": probe, "gallery": gallery, "distractor": distractors}
    counts = {split: _split_count(jobs) for split, jobs in splits.items()}
    return Plan(train + probe + gallery + distractors, counts, {}, mats)


def plan_scface(p: Preset, seed: int) -> Plan:
    """One HR mugshot per subject; 5 cameras x 3 distances of native LR probes, smallest at distance 1."""
    rng = np.random.default_rng([seed, 2])
    names = [f"{i + 1:03d}" for i in range(p.scface_subjects)]
    offset = _OFFSET["scface"]
    mugshots = [
        ImageJob(f"scface/mugshot_frontal_cropped_all/{name}_frontal.jpg", "hr", offset + i, 0, name)
        for i, name in enumerate(names)
    ]
    probes: dict[int, list[ImageJob]] = {}
    for d, height in SCFACE_HEIGHT.items():
        probes[d] = []
        for k, scale in enumerate(SCFACE_CAMERA_SCALE, start=1):
            jitter = rng.integers(-1, 2, size=len(names))
            for i, name in enumerate(names):
                size = int(np.clip(round(height * scale) + jitter[i], 6, 32))
                path = f"scface/surveillance_cameras_distance_{d}/cam{k}/{name}_cam{k}_{d}.jpg"
                probes[d].append(ImageJob(path, "native", offset + i, 1 + 5 * (d - 1) + (k - 1), name, size))
    counts = {"mugshot": _split_count(mugshots), **{f"distance_{d}": _split_count(jobs) for d, jobs in probes.items()}}
    return Plan(mugshots + [j for jobs in probes.values() for j in jobs], counts, {}, {})


def plan_survface(p: Preset, seed: int) -> Plan:
    """Training, verification (genuine: images 1-2 of an identity; impostor: image 1 vs the next identity's 2)
    and open-set identification (gallery/mated probes of the same identities, unmated from others).
    Identities are numbered consecutively across the three parts."""
    offset = _OFFSET["survface"]
    ver_root, ident_root = "survface/Face_Verification_Test_Set", "survface/Face_Identification_Test_Set"
    n_train, n_ver, n_gallery = p.survface_train_identities, p.survface_verification_identities, p.survface_gallery_identities
    train = _identity_images("native", "survface/training_set/{name}", _names(0, n_train), offset, p.survface_train_images)
    ver_names = _names(n_train, n_ver)
    verification = _identity_images("native", f"{ver_root}/verification_images", ver_names, offset + n_train, 2)
    positive = [name for n in ver_names for name in (f"{n}_1.jpg", f"{n}_2.jpg")]
    negative = [name for i, n in enumerate(ver_names) for name in (f"{n}_1.jpg", f"{ver_names[(i + 1) % n_ver]}_2.jpg")]
    first = n_train + n_ver
    gallery = _identity_images("native", f"{ident_root}/gallery", _names(first, n_gallery), offset + first, 2)
    mated = _identity_images("native", f"{ident_root}/mated_probe", _names(first, n_gallery), offset + first, 2, 2)
    unmated = _numbered("native", f"{ident_root}/unmated_probe", offset + first + n_gallery, p.survface_unmated)
    mats = {
        f"{ver_root}/positive_pairs_names.mat": {"positive_pairs_names": _names_cell(positive, 2)},
        f"{ver_root}/negative_pairs_names.mat": {"negative_pairs_names": _names_cell(negative, 2)},
        f"{ident_root}/gallery_img_ID_pairs.mat": _id_table(gallery, "gallery"),
        f"{ident_root}/mated_probe_img_ID_pairs.mat": _id_table(mated, "mated_probe"),
        f"{ident_root}/unmated_probe_img_names.mat": {"unmated_probe_set": _file_names(unmated)},
    }
    counts = {
        "train": _split_count(train),
        "verification": {**_split_count(verification), "genuine_pairs": n_ver, "impostor_pairs": n_ver},
        "gallery": _split_count(gallery),
        "mated_probe": _split_count(mated),
        "unmated_probe": _split_count(unmated),
    }
    return Plan(train + verification + gallery + mated + unmated, counts, {}, mats)


def _pairs_plan(p: Preset, seed: int, folder: str, kind: str) -> Plan:
    """LFW-format pairs: per fold ``lfw_pairs`` identities (at least 2) of 3 images each.

    Genuine pair: images 1 and 2 of one identity; impostor: image 1 of one and image 3 of the next.
    For XQLFW (``kind="degraded"``) image 1 stays HR and images 2-3 are degraded to a random size of
    :data:`XQLFW_SIZES`, so every pair has an HR and an LR side (the same identities as LFW).
    """
    rng = np.random.default_rng([seed, 4])
    per_fold = max(p.lfw_pairs, 2)
    lines = [f"10 {p.lfw_pairs}"]
    jobs = []
    for fold in range(10):
        names = [f"Synth_{fold * per_fold + i + 1:05d}" for i in range(per_fold)]
        for i, name in enumerate(names):
            sizes = rng.choice(XQLFW_SIZES, size=2)
            for n in (1, 2, 3):
                size = None if kind == "hr" or n == 1 else int(sizes[n - 2])
                identity = _OFFSET["lfw"] + fold * per_fold + i
                jobs.append(ImageJob(f"{folder}/{name}/{name}_{n:04d}.jpg", kind, identity, n, name, size))
        lines += [f"{names[i]}\t1\t2" for i in range(p.lfw_pairs)]
        lines += [f"{names[i]}\t1\t{names[(i + 1) % per_fold]}\t3" for i in range(p.lfw_pairs)]
    pairs = {"genuine_pairs": 10 * p.lfw_pairs, "impostor_pairs": 10 * p.lfw_pairs, "folds": 10}
    counts = {"test": {**_split_count(jobs), **pairs}}
    return Plan(jobs, counts, {f"{folder}/pairs.txt": "\n".join(lines) + "\n"}, {})


def plan_lfw(p: Preset, seed: int) -> Plan:
    return _pairs_plan(p, seed, "lfw", "hr")


def plan_xqlfw(p: Preset, seed: int) -> Plan:
    return _pairs_plan(p, seed, "xqlfw", "degraded")


def plan_ui(p: Preset, seed: int) -> Plan:
    jobs = _numbered("ui", "ui", 0, p.ui_images)
    return Plan(jobs, {"ui": _split_count(jobs)}, {}, {})


PLANNERS = {
    "hr": plan_hr,
    "tinyface": plan_tinyface,
    "scface": plan_scface,
    "survface": plan_survface,
    "lfw": plan_lfw,
    "xqlfw": plan_xqlfw,
    "ui": plan_ui,
}


def render(generator: Generator, jobs: Sequence[ImageJob]) -> list[np.ndarray]:
    """The images of ``jobs`` (uint8 RGB), rendered in one generator call per job kind/size mode."""
    out: list[np.ndarray | None] = [None] * len(jobs)
    groups: dict[tuple[str, bool], list[int]] = defaultdict(list)
    for index, job in enumerate(jobs):
        groups[(job.kind, job.size is None)].append(index)
    for (kind, no_size), indices in groups.items():
        ids = [jobs[i].identity for i in indices]
        imgs = [jobs[i].image for i in indices]
        if kind == "hr" or (kind == "degraded" and no_size):
            images = list(generator.render_hr(ids, imgs, size=HR_SIZE))
        elif kind == "native":
            images = generator.native_lr(ids, imgs, heights=None if no_size else [jobs[i].size for i in indices])
        elif kind == "degraded":
            images = _degrade(generator.render_hr(ids, imgs, size=HR_SIZE), [jobs[i].size for i in indices])
        elif kind == "ui":
            images = generator.render_ui(ids)
        else:
            raise ValueError(f"unknown image job kind {kind!r}; expected hr, native, degraded or ui")
        for i, image in zip(indices, images):
            out[i] = image
    return out  # type: ignore[return-value]


def _degrade(hr: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Each HR image bicubic-downsampled to its size and back to HR size (XQLFW's resolution mixing)."""
    out = list(hr)
    sizes = np.asarray(sizes)
    for size in np.unique(sizes):
        chosen = np.flatnonzero(sizes == size)
        for i, image in zip(chosen, synthetic_lr(hr[chosen], int(size), upsample_to=hr.shape[1])):
            out[i] = image
    return out


def save_jpeg(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="JPEG", quality=JPEG_QUALITY)


def _write_chunk(generator: Generator, root: Path, jobs: Sequence[ImageJob]) -> int:
    for job, image in zip(jobs, render(generator, jobs)):
        save_jpeg(root / job.path, image)
    return len(jobs)


def _worker_write(seed: int, root: str, jobs: Sequence[ImageJob]) -> int:
    """Process-pool entry: one generator per call (cheap), one torch thread like the serial path."""
    torch.set_num_threads(1)
    return _write_chunk(SynthFace(seed=seed), Path(root), jobs)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Render with one torch thread, whatever the machine: bicubic resizing rounds differently with
    other thread counts (so the bytes would depend on the core count), and spinning thread pools of
    concurrent jobs on a shared CPU slow each other down many times over. Parallelism is ``workers``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _chunks(jobs: Sequence[ImageJob]) -> Iterator[list[ImageJob]]:
    """Jobs grouped by how they are rendered, :data:`CHUNK` at a time (a generator call has a fixed cost)."""
    ordered = sorted(jobs, key=lambda j: (j.kind, j.size is None))
    for _, group in groupby(ordered, key=lambda j: (j.kind, j.size is None)):
        group = list(group)
        for start in range(0, len(group), CHUNK):
            yield group[start : start + CHUNK]


def write_images(
    jobs: Sequence[ImageJob], root: Path, seed: int, generator: Generator | None = None, workers: int = 1
) -> None:
    """Render and save every job under ``root`` with a progress bar; ``workers > 1`` uses processes."""
    progress = tqdm(total=len(jobs), desc="synth: writing images", unit="img")
    chunks = list(_chunks(jobs))
    if workers <= 1 or generator is not None:
        generator = generator or SynthFace(seed=seed)
        with one_torch_thread():
            for chunk in chunks:
                progress.update(_write_chunk(generator, root, chunk))
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for done in pool.map(_worker_write, [seed] * len(chunks), [str(root)] * len(chunks), chunks):
                progress.update(done)
    progress.close()


def write_synthetic(
    out: str | Path,
    preset: str | Preset = "quick",
    seed: int = 0,
    generator: Generator | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Write every synthetic dataset under ``out`` (which must not exist or be empty); returns the manifest.

    ``generator`` replaces SynthFace(seed) (tests); ``workers`` > 1 renders in that many processes
    with identical output.
    """
    out = Path(out)
    sizes = PRESETS[preset] if isinstance(preset, str) and preset in PRESETS else preset
    if not isinstance(sizes, Preset):
        raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)} or a Preset")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} already exists and is not an empty folder; choose a new output folder or remove it")
    plans = {name: planner(sizes, seed) for name, planner in PLANNERS.items()}
    if out.exists():
        out.rmdir()  # empty, checked above
    with atomic_folder(out) as staging:
        write_images([job for plan in plans.values() for job in plan.jobs], staging, seed, generator, workers)
        for plan in plans.values():
            _write_side_files(plan, staging)
        manifest = {
            "generator": "SynthFace",
            "generator_version": SYNTHFACE_VERSION if generator is None else type(generator).__name__,
            "writer_version": WRITER_VERSION,
            "preset": preset if isinstance(preset, str) else "custom",
            "sizes": asdict(sizes),
            "seed": seed,
            "datasets": {name: plan.counts for name, plan in plans.items()},
        }
        write_json_atomic(staging / "manifest.json", manifest)
    return manifest


def _write_side_files(plan: Plan, root: Path) -> None:
    for relative, text in plan.texts.items():
        write_text_atomic(root / relative, text)
    for relative, variables in plan.mats.items():
        with atomic_write(root / relative) as temporary:
            temporary.write_bytes(mat_bytes(variables))


def mat_bytes(variables: dict[str, np.ndarray]) -> bytes:
    """A MATLAB 5 .mat file; the 116-byte text header (which scipy stamps with the time) is fixed."""
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables)
    return MAT_HEADER + buffer.getvalue()[len(MAT_HEADER) :]

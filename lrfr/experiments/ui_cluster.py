"""Chapter 1: the data sets, a backbone pre-trained on HR faces, and the unrecognizable-identities cluster.

The backbone is the book's shared pre-training (:mod:`lrfr.experiments.pretraining`).
Chai et al. 2023 (Fig. 1a, after Deng et al. 2021): a model pre-trained on HR faces maps
unrecognizable faces to one cluster; very-low-resolution faces split into those far from its
center and those close to it. Cheng et al. 2018 (Table 4): the same model recognises synthetic LR
faces (bicubic down-sampling of HR faces to TinyFace's mean size) better than native LR faces.
Everything here reads the data through the real datasets' loaders, so it runs on the synthetic
set (quick mode) and on the real benchmarks (full mode) alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from lrfr.data.base import FaceRecord, read_image
from lrfr.data.degrade import synthetic_lr
from lrfr.data.loaders import load_folder, load_pairs, load_scface, load_tinyface_test, load_unlabelled
from lrfr.protocols.embeddings import extract_embeddings
from lrfr.protocols.identification import Identification, identify
from lrfr.references import reference_values
from lrfr.stats import Bootstrap, Estimate, Statistic, mean, percentile_interval, rank_hits
from lrfr.training.objective import Objective

TINYFACE_MEAN_HEIGHT = 20  # Cheng et al. 2018, Table 2 / Sec. 5.1: TinyFace faces average 20 x 16 px


@dataclass(frozen=True)
class DataSets:
    """The record sets chapter 1 shows and embeds, read by the real loaders."""

    hr: tuple[FaceRecord, ...]
    tinyface: tuple[FaceRecord, ...]  # probes + gallery + distractors
    scface_far: tuple[FaceRecord, ...]  # distance 1 (4.2 m)
    scface_mugshots: tuple[FaceRecord, ...]
    lfw: tuple[FaceRecord, ...]
    xqlfw: tuple[FaceRecord, ...]
    ui: tuple[FaceRecord, ...]


def load_data_sets(data_root: str | Path, hr_folder: str | None = "hr") -> DataSets:
    """Every benchmark's test images under ``data_root`` (the layout ``lrfr data synth`` writes);
    the HR identity set from ``<data_root>/<hr_folder>`` (none when ``hr_folder`` is None, e.g. a
    RecordIO pre-training set)."""
    root = Path(data_root)
    tinyface = load_tinyface_test(root / "tinyface")
    scface = load_scface(root / "scface")
    return DataSets(
        hr=tuple(load_folder(root / hr_folder).records) if hr_folder else (),
        tinyface=tinyface.probe + tinyface.gallery + tinyface.distractors,
        scface_far=scface.probes_at(1),
        scface_mugshots=scface.mugshots,
        lfw=load_pairs(root / "lfw", "LFW").records,
        xqlfw=load_pairs(root / "xqlfw", "XQLFW").records,
        ui=tuple(load_unlabelled(root / "ui").records),
    )


def sample_images(records: Sequence[FaceRecord], count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` images (uint8 H x W x 3, as stored) drawn from ``records`` without replacement, seeded."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(records), size=min(count, len(records)), replace=False)
    return [read_image(records[i].path) for i in sorted(chosen)]


def synthetic_lr_images(images: Sequence[np.ndarray], size: int) -> list[np.ndarray]:
    """Bicubic down-sampling (:func:`lrfr.data.degrade.synthetic_lr`) of square HR images to ``size`` x ``size``."""
    return list(synthetic_lr(np.stack(images), size))


def probe_gallery_split(labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (probe, gallery): each identity with >= 2 images gets half its images (rounded
    down, at least one) as probes and the rest as gallery, like TinyFace's partition (Cheng Table 2);
    identities with one image go to the gallery."""
    rng = np.random.default_rng(seed)
    probe = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        if len(members) >= 2:
            probe[members[: max(1, len(members) // 2)]] = True
    return probe, ~probe


@dataclass(frozen=True)
class Evaluated:
    """One 1:N search kept per probe (:class:`~lrfr.experiments.cheng2018.Identification`) with the
    bootstrap over its probes' identities (:mod:`lrfr.stats`)."""

    result: Identification
    boot: Bootstrap

    def rank(self, k: int) -> Statistic:
        """CMC(k) in percent as a bootstrap statistic."""
        return mean(rank_hits(self.result.first_ranks, k), 100)

    def estimates(self, ranks: Sequence[int] = (1, 20, 50)) -> dict[str, Estimate]:
        """Rank-k for each k of ``ranks`` and mAP (percent) with their intervals (Cheng Table 4's columns)."""
        columns = {f"Rank-{k}": self.rank(k) for k in ranks}
        columns["mAP"] = mean(self.result.average_precision, 100)
        return {name: self.boot.estimate(statistic) for name, statistic in columns.items()}


def _evaluated(probes: np.ndarray, gallery: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray,
               resamples: int, seed: int) -> Evaluated:
    result = identify(probes, gallery, np.asarray(probe_labels), np.asarray(gallery_labels))
    return Evaluated(result, Bootstrap(result.probe_labels, resamples=resamples, seed=seed))


def first_image_gallery(labels: np.ndarray) -> np.ndarray:
    """Boolean gallery mask: the first item of each identity (in order); the others are its probes."""
    labels = np.asarray(labels)
    gallery = np.zeros(len(labels), dtype=bool)
    gallery[np.unique(labels, return_index=True)[1]] = True
    return gallery


def resolution_sweep(objective: Objective, records: Sequence[FaceRecord], sizes: Sequence[int], *,
                     resamples: int = 1000, seed: int = 0) -> dict[int, Evaluated]:
    """Ling et al. 2023 Fig. 3a analogue: rank-1 of an HR-trained model against probe resolution.

    Gallery: the first HR image of each identity of ``records`` at the model input; probes: the identity's
    other images bicubically down-sampled to ``r`` x ``r`` px (then resized to the model input by the
    embedder), for each ``r`` in ``sizes``. One seeded bootstrap over the probe identities is shared by
    every size, so differences between sizes are paired.
    """
    labels = np.array([r.label for r in records])
    gallery = first_image_gallery(labels)
    probe_records = [r for r, g in zip(records, gallery) if not g]
    gallery_embeddings = _embed(objective, [r for r, g in zip(records, gallery) if g])
    return {size: _evaluated(_embed(objective, probe_records, size), gallery_embeddings, labels[~gallery],
                             labels[gallery], resamples, seed)
            for size in sizes}


def synthetic_vs_native(
    objective: Objective,
    hr_records: Sequence[FaceRecord],
    native: tuple[Sequence[FaceRecord], Sequence[FaceRecord]],
    *,
    size: int = TINYFACE_MEAN_HEIGHT,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Evaluated]:
    """Cheng et al. 2018 Table 4 analogue: the same model on native LR probes vs gallery (TinyFace, without
    distractors) and on synthetic LR faces (``hr_records`` bicubic down-sampled to ``size`` px, split per
    identity into probes and gallery by :func:`probe_gallery_split`). Keys "native LR" and "synthetic LR".

    Choice: the synthetic set is square ``size`` x ``size`` (TinyFace's mean is 20 x 16; our synthetic and
    aligned real faces are square) and comes from another identity set than the native one, as SynLR-MF2
    (MegaFace2) did in the paper. The two sets are resampled independently (different identities).
    """
    probe_records, gallery_records = native
    labels = np.array([r.label for r in hr_records])
    synthetic = _embed(objective, hr_records, size)  # read at ``size`` px, resized to the model input
    probe, gallery = probe_gallery_split(labels, seed)
    return {
        "native LR": _evaluated(_embed(objective, probe_records), _embed(objective, gallery_records),
                                np.array([r.label for r in probe_records]), np.array([r.label for r in gallery_records]),
                                resamples, seed),
        "synthetic LR": _evaluated(synthetic[probe], synthetic[gallery], labels[probe], labels[gallery], resamples,
                                   seed + 1),
    }


def independent_ratio(first: Evaluated, a: Statistic, second: Evaluated, b: Statistic) -> Estimate:
    """``a`` on ``first``'s probes divided by ``b`` on ``second``'s (two test sets), each set's identities
    resampled independently; e.g. native / synthetic rank-1 (Cheng Table 4: 32.1 / 39.2 = 0.82 for CentreFace)."""
    samples = first.boot.samples(a) / second.boot.samples(b)
    low, high = percentile_interval(samples, first.boot.level)
    return Estimate(a.value() / b.value(), low, high, first.boot.level, first.boot.resamples,
                    first.boot.groups + second.boot.groups)


def _embed(objective: Objective, records: Sequence[FaceRecord], read_size: int | None = None) -> np.ndarray:
    return extract_embeddings(objective.backbone, records, input_size=read_size, progress=False).embeddings


def bimodality_coefficient(values: np.ndarray) -> float:
    """Sarle's bimodality coefficient b = (g^2 + 1) / (k + 3 (n-1)^2 / ((n-2)(n-3))), with g the sample
    skewness and k the sample excess kurtosis (bias-corrected, as SAS defines them). b > 5/9 ~ 0.556
    (the value of a uniform distribution) suggests a bimodal (or strongly skewed) distribution."""
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if x.ndim != 1 or n < 4 or np.ptp(x) == 0:
        raise ValueError(f"values has shape {x.shape}; expected >= 4 values that are not all equal")
    d = x - x.mean()
    m2, m3, m4 = (d**2).mean(), (d**3).mean(), (d**4).mean()
    skew = np.sqrt(n * (n - 1)) / (n - 2) * m3 / m2**1.5
    kurt = (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * (m4 / m2**2 - 3) + 6)
    return float((skew**2 + 1) / (kurt + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))))


def density_modes(values: np.ndarray, grid: int = 512, floor: float = 0.05) -> int:
    """Number of modes of a Gaussian kernel density estimate (Scott's bandwidth) of ``values``: local
    maxima on a ``grid`` over their range whose height is at least ``floor`` times the highest. Unlike
    the bimodality coefficient, a skewed one-mode distribution counts 1."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size < 4 or np.ptp(x) == 0:
        raise ValueError(f"values has shape {x.shape}; expected >= 4 values that are not all equal")
    points = np.linspace(x.min(), x.max(), grid)
    density = stats.gaussian_kde(x)(points)
    peaks = (density[1:-1] > density[:-2]) & (density[1:-1] >= density[2:])
    ends = [density[0] > density[1], density[-1] > density[-2]]
    heights = np.concatenate([density[[0]][ends[:1]], density[1:-1][peaks], density[[-1]][ends[1:]]])
    return int((heights >= floor * density.max()).sum())


CHENG_TABLE4_SETS = {"native LR": "TinyFace", "synthetic LR": "SynLR-MF2"}  # our sets -> the paper's columns


def native_synthetic_ratios(results: dict[str, Evaluated], row: str, ranks: Sequence[int] = (1, 20, 50)) -> "pd.DataFrame":
    """The native / synthetic ratio of every Cheng et al. 2018 Table 4 column: the paper's (CentreFace,
    VggFace: printed cells divided; labelled) beside this run (row ``row``; independent bootstrap of the two
    test sets, 95 % interval). No difference column: the data differ."""
    import pandas as pd

    paper = {(c.row, c.column, c.metric): c.value for c in reference_values("cheng2018", 4)}
    native, synthetic = results["native LR"], results["synthetic LR"]
    statistics = {name: {**{f"Rank-{k}": e.rank(k) for k in ranks}, "mAP": mean(e.result.average_precision, 100)}
                  for name, e in results.items()}
    lines = [{"model": f"{model} (paper, real faces)",
              **{m: f"{paper[(model, 'TinyFace', m)] / paper[(model, 'SynLR-MF2', m)]:.2f}" for m in statistics["native LR"]}}
             for model in ("CentreFace", "VggFace")]
    lines.append({"model": row,
                  **{m: independent_ratio(native, statistics["native LR"][m], synthetic, statistics["synthetic LR"][m]).format(2)
                     for m in statistics["native LR"]}})
    return pd.DataFrame(lines).set_index("model")

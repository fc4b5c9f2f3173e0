"""Calibration of SynthFace against real faces: recognition accuracy versus probe resolution.

Protocol (mirrors the real-face measurement of the issue): a ``quick`` backbone with an ArcFace head is
trained with the project's trainer on HR renders (down-sampled to the model input, 64 px by default) of the
training identities. The input is 64 px rather than the quick mode's 32 px so that the model sees the detail
that the probes lose between 32 and 14 px: with a 32-px input, probes of 112, 64 and 32 px are the same image
to the model, and it leans on coarse cues that survive down-sampling, which softens the knee of the curve.
On 1,000 held-out identities (as many as the real measurement; chance rank-1 is 0.1 %) the gallery is one HR
image per identity and the probes are other images of the same identities, either bicubic-degraded to ``r``
px (synthetic LR) or passed through the native camera chain at height ``r`` (native LR), then bicubic-resized
to the model input. Rank-1 is the nearest gallery image by cosine; verification accuracy is on balanced
HR-LR pairs (genuine: a probe and its own gallery image; impostor: a probe and a random other identity's
gallery image) with the threshold chosen by 10-fold cross-validation (best threshold on nine folds, accuracy
on the tenth, averaged).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from lrfr.data.base import FaceArray
from lrfr.data.degrade import synthetic_lr
from lrfr.data.synthetic import SynthFace
from lrfr.experiments.ui_cluster import TINYFACE_MEAN_HEIGHT
from lrfr.protocols import evaluate_identification, extract_embeddings, kfold_accuracy
from lrfr.references import reference_values
from lrfr.training import (
    HeadSpec,
    ModelSpec,
    OptimizerConfig,
    ScheduleConfig,
    TrainConfig,
    Trainer,
    build_objective,
)

SYNTHETIC_SIZES = (112, 64, 32, 24, 20, 16, 14, 12, 8)
NATIVE_SIZES = (32, 24, 20, 16, 14, 12, 8)


@dataclass
class CalibrationConfig:
    """Sizes of a calibration run (the defaults take about 8 minutes on 2 CPU cores and about a minute on
    one H100; training at the 64-px input costs about 4x the 32-px input)."""

    seed: int = 0
    similar_fraction: float = 0.2
    train_identities: int = 800
    train_images: int = 12
    test_identities: int = 1000  # the real measurement's count: the curve's tail depends on it
    probes_per_identity: int = 3
    epochs: int = 25
    batch_size: int = 128
    lr: float = 0.1
    arcface_scale: float = 32.0
    arcface_margin: float = 0.3
    input_size: int = 64  # model input (px); the backbone is built for it
    synthetic_sizes: tuple[int, ...] = SYNTHETIC_SIZES
    native_sizes: tuple[int, ...] = NATIVE_SIZES
    folds: int = 10
    device: str = "cpu"  # where the model trains and embeds ("auto": cuda, then mps, then cpu)
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("train_identities", "train_images", "test_identities", "probes_per_identity", "epochs",
                     "batch_size", "input_size", "folds"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (2 if name in ("train_identities", "test_identities",
                                                                     "folds") else 1):
                raise ValueError(f"{name} {value!r} is not valid; expected a positive int (>= 2 for counts of "
                                 "identities and folds)")
        for name in ("synthetic_sizes", "native_sizes"):
            sizes = getattr(self, name)
            if any(not isinstance(s, int) or s < 2 for s in sizes):
                raise ValueError(f"{name} {sizes!r} is not valid; expected ints >= 2")


def train_model(config: CalibrationConfig, generator: SynthFace) -> tuple[torch.nn.Module, list[dict]]:
    """Train the quick backbone + ArcFace on HR renders of the training identities; (backbone, history)."""
    ids = np.repeat(np.arange(config.train_identities), config.train_images)
    imgs = np.tile(np.arange(config.train_images), config.train_identities)
    images = synthetic_lr(generator.render_hr(ids, imgs, progress=config.progress), config.input_size)
    head = HeadSpec("arcface", config.train_identities,
                    {"scale": config.arcface_scale, "margin": config.arcface_margin})
    objective = build_objective(ModelSpec(backbone="quick", heads={"main": head},
                                          backbone_kwargs={"input_size": (config.input_size, config.input_size)}))
    train = TrainConfig(
        seed=config.seed, epochs=config.epochs, batch_size=config.batch_size, device=config.device,
        progress=config.progress, optimizer=OptimizerConfig(name="sgd", lr=config.lr),
        schedule=ScheduleConfig(name="poly", warmup_epochs=1.0, power=2.0),
    )
    history = Trainer(train, objective, {"main": FaceArray(images, ids)}).fit(resume=False)
    return objective.backbone, history


def identification_rates(probes: np.ndarray, gallery: np.ndarray, labels: np.ndarray,
                         ranks: tuple[int, ...] = (1, 20)) -> dict[int, float]:
    """Rank-k identification rate for each k of ``ranks``; gallery row ``i`` is identity ``i`` (``labels``
    index it)."""
    return evaluate_identification(probes, gallery, labels, np.arange(len(gallery)), ranks=ranks).cmc


def native_synthetic_ratios(records: list[dict], size: int = TINYFACE_MEAN_HEIGHT) -> dict:
    """Native / synthetic rank-1 and rank-20 at probe height ``size`` from the curve's records, beside the
    same ratios of Cheng et al. 2018, Table 4 (TinyFace / SynLR-MF2, the same model on both)."""
    ours = {(r["kind"], r["probe_px"]): r for r in records}
    if ("native", size) not in ours or ("synthetic", size) not in ours:
        raise ValueError(f"the records hold no native and synthetic probes of {size} px; expected both")
    native, synthetic = ours[("native", size)], ours[("synthetic", size)]
    paper = {(c.row, c.column, c.metric): c.value for c in reference_values("cheng2018", 4)}
    ratio = {"bench": "calibration", "kind": "native/synthetic", "probe_px": size}
    for metric, key in (("Rank-1", "rank1"), ("Rank-20", "rank20")):
        ratio[f"{key}_ratio"] = round(native[key] / synthetic[key], 3) if synthetic[key] else None
        for model in ("CentreFace", "VggFace"):
            ratio[f"paper_{key}_ratio_{model}"] = round(paper[(model, "TinyFace", metric)]
                                                        / paper[(model, "SynLR-MF2", metric)], 3)
    return ratio


def verification_accuracy(probes: np.ndarray, gallery: np.ndarray, labels: np.ndarray, folds: int,
                          seed: int) -> float:
    """Accuracy on balanced genuine/impostor HR-LR pairs (each probe with its own and one random other
    identity's gallery image), threshold by ``folds``-fold cross-validation over randomly assigned folds."""
    rng = np.random.default_rng(seed)
    others = (labels + rng.integers(1, len(gallery), size=len(labels))) % len(gallery)
    scores = np.concatenate([(probes * gallery[labels]).sum(1), (probes * gallery[others]).sum(1)])
    same = np.concatenate([np.ones(len(labels), bool), np.zeros(len(labels), bool)])
    return kfold_accuracy(scores, same, folds=rng.permutation(len(scores)) % folds).mean


def _embed(backbone: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    return extract_embeddings(backbone, FaceArray(images), progress=False).embeddings


def measure_degradation_curve(config: CalibrationConfig | None = None) -> tuple[dict, list[dict]]:
    """Train on synthetic HR, then measure rank-1 and verification accuracy per probe size and kind.

    Returns (settings and training summary, one record per (probe px, kind)).
    """
    config = config or CalibrationConfig()
    generator = SynthFace(config.seed, config.similar_fraction)
    backbone, history = train_model(config, generator)
    ids = np.arange(config.train_identities, config.train_identities + config.test_identities)
    size = config.input_size
    gallery = _embed(backbone, synthetic_lr(generator.render_hr(ids, np.zeros_like(ids)), size))
    probe_ids = np.repeat(ids, config.probes_per_identity)
    probe_imgs = np.tile(np.arange(1, config.probes_per_identity + 1), len(ids))
    labels = probe_ids - config.train_identities
    hr = generator.render_hr(probe_ids, probe_imgs)
    probes = {("synthetic", r): synthetic_lr(hr, r, upsample_to=size) for r in config.synthetic_sizes}
    for r in config.native_sizes:
        native = np.stack(generator.camera_chain(hr, probe_ids, probe_imgs, heights=np.full(len(probe_ids), r)))
        probes[("native", r)] = synthetic_lr(native, size)
    records = []
    for (kind, r), images in probes.items():
        embedded = _embed(backbone, images)
        rates = identification_rates(embedded, gallery, labels)
        records.append({
            "bench": "calibration", "kind": kind, "probe_px": r,
            "rank1": round(100 * rates[1], 2), "rank20": round(100 * rates[20], 2),
            "verification_acc": round(100 * verification_accuracy(embedded, gallery, labels, config.folds,
                                                                   config.seed), 2),
            "probes": len(labels), "gallery": len(ids),
        })
    settings = {"bench": "calibration", "kind": "settings", **asdict(config),
                "final_train_loss": round(history[-1]["loss"], 4),
                "train_seconds": round(sum(h["seconds"] for h in history), 1),
                "chance_rank1": round(100 / len(ids), 2),
                "verification": f"balanced HR-LR pairs, threshold by {config.folds}-fold cross-validation"}
    return settings, records

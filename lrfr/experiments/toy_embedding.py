"""The toy 2-D embedding experiment of Chai et al. 2023, Sec. 4.2 and Fig. 4.

Eight SynthFace identities (``similar_fraction=0``, so no identity copies another): IDs 0, 2, 3, 5, 7
are easy, rendered in HR and bicubic-down-sampled to the 32 x 32 input of the ``quick`` backbone; IDs
1, 4, 6 are hard, passed through SynthFace's native camera chain (blur, noise, JPEG) at a face height
of ``hard_height`` px (7 by default) and bicubic-up-sampled back to 32 x 32. The ``quick`` backbone is
trained with ``embedding_size=2`` through :func:`lrfr.experiments.workflow.cached_run` (a run folder per method
under ``root``) with an ArcFace or AdaFace head, or, for "ours", ArcFace plus the ``recognizability``
loss term, which reads a second stream ``ui`` of SynthFace unrecognizable images (UIs). The figure
shows the L2-normalised training embeddings and the UI center, the re-normalised mean of the UIs'
normalised embeddings (:func:`lrfr.protocols.quality.ui_center`).

Training recipe (chosen for a 2-D embedding, measured on seeds 0-6): the heads keep their default
margins (ArcFace m = 0.5, AdaFace m = 0.4) but use ``s = 8`` instead of 64, and the optimizer is AdamW
(lr 0.01, poly decay, one warm-up epoch) for 60 epochs of 128 faces. With ``s`` = 16, 32 or 64, or with
SGD, the eight classes mostly collapse onto one or two directions of the circle (the softmax saturates
and the prototypes bunch together); with this recipe ArcFace separates all five easy identities for
seeds 0-2, 4 and 5, and still collapses for seeds 3 and 6. The ``quick`` backbone is narrowed to widths
(16, 32, 64) with one block per stage (``BACKBONE_KWARGS``), so that the three methods together train
in about 15 s on two CPU cores. "Ours" trains from scratch with the same recipe and the term's paper
defaults (alpha 5, beta 2, gamma 1). In this toy its RI target d_UI d_N / (d_P + 1e-7) grows without
bound as the 2-D clusters tighten (d_P -> 0), so the L1 part dominates the loss and the classes separate
less well than with ArcFace alone (seeds 0-2: 43-55 % of the training faces nearest their own prototype,
against 88-100 % for ArcFace); the figure shows what the term does here, not the paper's result.

Training runs on the CPU (a toy sized for the book's quick mode); the run folder is resumed when it
already holds this exact config, so re-executing the chapter reuses the trained weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrfr.data import DATASETS
from lrfr.data.base import FaceArray
from lrfr.data.degrade import resize, synthetic_lr
from lrfr.data.synthetic import SynthFace
from lrfr.experiments.workflow import cached_run
from lrfr.protocols import extract_embeddings, ui_center
from lrfr.training import (
    DataSpec,
    ExperimentConfig,
    HeadSpec,
    ModelSpec,
    OptimizerConfig,
    ScheduleConfig,
    TermSpec,
    TrainConfig,
)

NUM_IDENTITIES = 8
HARD_IDS = (1, 4, 6)
METHODS = ("arcface", "adaface", "ours")
INPUT_SIZE = 32
SCALE = 8.0
BACKBONE_KWARGS = {"input_size": INPUT_SIZE, "embedding_size": 2, "widths": (16, 32, 64), "blocks": (1, 1, 1)}


@dataclass(frozen=True)
class ToyEmbedding:
    """What Fig. 4 plots for one method: unit 2-D embeddings of the faces and of the UIs, and the UI center."""

    method: str
    points: np.ndarray  # (N, 2) unit-norm embeddings of the training faces
    labels: np.ndarray  # (N,) identity 0..7
    hard: np.ndarray  # (N,) True for the hard identities 1, 4, 6
    ui_center: np.ndarray  # (2,) unit vector
    ui_points: np.ndarray  # (M, 2) unit-norm embeddings of the UIs
    identity_names: list[str]  # name of identity k, "ID k" (hard ones marked with a check, as in Fig. 4)
    run_path: Path
    seconds: float  # wall time of the whole call: rendering, training (or resuming) and embedding

    def mean_cosine_to_ui(self) -> dict[str, float]:
        """Mean cosine between the UI center and the easy / the hard identities' embeddings."""
        cosine = self.points @ self.ui_center
        return {"easy": float(cosine[~self.hard].mean()), "hard": float(cosine[self.hard].mean())}


@DATASETS.register("toy_embedding_faces")
def toy_faces(seed: int = 0, images_per_identity: int = 16, hard_height: int = 7) -> FaceArray:
    """The labelled toy set (dataset ``"toy_embedding_faces"``): easy IDs clean, hard IDs native LR."""
    generator = SynthFace(seed=seed, similar_fraction=0.0)
    ids = np.repeat(np.arange(NUM_IDENTITIES), images_per_identity)
    imgs = np.tile(np.arange(images_per_identity), NUM_IDENTITIES)
    hr = generator.render_hr(ids, imgs)
    images = synthetic_lr(hr, INPUT_SIZE)
    hard = np.isin(ids, HARD_IDS)
    native = generator.camera_chain(hr[hard], ids[hard], imgs[hard], heights=np.full(hard.sum(), hard_height))
    images[hard] = synthetic_lr(np.stack(native), INPUT_SIZE)
    return FaceArray(images, ids)


@DATASETS.register("toy_embedding_ui")
def toy_ui(seed: int = 0, count: int = 64) -> FaceArray:
    """The UI stream (dataset ``"toy_embedding_ui"``): SynthFace UIs (4-12 px) up-sampled to 32 px."""
    faces = SynthFace(seed=seed).render_ui(np.arange(count))  # 4..12 px
    return FaceArray(np.stack([resize(face, INPUT_SIZE) for face in faces]))


def toy_config(
    method: str, *, images_per_identity: int, epochs: int, seed: int, ui_images: int, batch_size: int
) -> ExperimentConfig:
    """The experiment config of one method (Fig. 4): narrow quick backbone, 2-D embedding, s = 8 head.

    The run name holds the method and the seed; :func:`lrfr.experiments.workflow.cached_run` adds a
    digest of the config, so runs of other sizes under the same root get their own folders.
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not valid; expected one of {METHODS}")
    head = HeadSpec("adaface" if method == "adaface" else "arcface", "main", {"scale": SCALE})
    terms = [TermSpec("cls", "classification")]
    data = {"main": DataSpec("toy_embedding_faces", {"seed": seed, "images_per_identity": images_per_identity})}
    if method == "ours":
        terms.append(TermSpec("recognizability", "recognizability"))
        data["ui"] = DataSpec("toy_embedding_ui", {"seed": seed, "count": ui_images})
    train = TrainConfig(
        seed=seed, epochs=epochs, batch_size=batch_size, device="cpu", amp=False, progress=False,
        keep_checkpoints=1, optimizer=OptimizerConfig(name="adamw", lr=0.01),
        schedule=ScheduleConfig(name="poly", warmup_epochs=1.0),
    )
    model = ModelSpec(backbone="quick", backbone_kwargs=dict(BACKBONE_KWARGS),
                      heads={"main": head}, terms=terms)
    return ExperimentConfig(name=f"toy_embedding_{method}_seed{seed}", train=train, model=model, data=data)


def toy_embedding_experiment(
    method: str,
    *,
    images_per_identity: int = 16,
    epochs: int = 60,
    seed: int = 0,
    ui_images: int = 64,
    batch_size: int = 32,
    root: Path,
) -> ToyEmbedding:
    """Train one method of Fig. 4 (``"arcface"``, ``"adaface"`` or ``"ours"``) and embed faces and UIs in 2-D."""
    started = time.perf_counter()
    config = toy_config(method, images_per_identity=images_per_identity, epochs=epochs, seed=seed,
                        ui_images=ui_images, batch_size=batch_size)
    run, objective = cached_run(config, root)
    faces = toy_faces(seed, images_per_identity)
    points = extract_embeddings(objective.backbone, faces, progress=False).embeddings
    ui_points = extract_embeddings(objective.backbone, toy_ui(seed, ui_images), progress=False).embeddings
    labels = faces.labels.numpy()
    return ToyEmbedding(
        method=method, points=points, labels=labels, hard=np.isin(labels, HARD_IDS),
        ui_center=ui_center(ui_points), ui_points=ui_points,
        identity_names=[f"ID {k}" + (" \u2713" if k in HARD_IDS else "") for k in range(NUM_IDENTITIES)],
        run_path=run.path, seconds=time.perf_counter() - started,
    )

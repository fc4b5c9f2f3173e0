"""Chapter 2: Chai et al. 2023, the recognizability index (RI), the index diversion (ID) loss and
perceptibility attention, as fine-tuning runs of a pre-trained backbone, and their evaluation.

Every method of Table 4 is one :class:`Method`: a classification head (Table 4's first eight
rows) or ArcFace plus the ``recognizability`` loss term with Eq. 10's weights (rows I, II, III and
Ours). A method is fine-tuned from the chapter-1 backbone on the TinyFace-layout training set
(Sec. 4: "we fine-tune these models using the respective training examples"); the RI methods get
a second data stream of UI images for the UI center. Evaluation writes the dashboard's run-folder
contract: an ``explore`` embedding set (raw embeddings v, path, split, native height, learned
and target RI, distance to the UI center), ``ui_center.json`` and stored 2-D projections.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from lrfr.data.base import FaceDataset, FaceRecord
from lrfr.data.loaders import TinyFaceTest
from lrfr.experiments.workflow import native_heights
from lrfr.losses.recognizability_index import recognizability_index
from lrfr.models.embedder import Embedder, InputSpec
from lrfr.models.modes import eval_mode, module_device
from lrfr.protocols.embeddings import extract_embeddings, image_batches
from lrfr.protocols.identification import Identification, identify
from lrfr.protocols.erc import REJECT_FRACTIONS, cross_pair_counts, cross_resolution_pairs, error_versus_reject
from lrfr.protocols.open_set import identity_templates
from lrfr.protocols.quality import certainty_ratio, ers_quality, ser_fiq, ui_center
from lrfr.protocols.verification import pair_scores
from lrfr.runs import RunFolder
from lrfr.stats import Statistic
from lrfr.training.config import (
    DataSpec, ExperimentConfig, HeadSpec, ModelSpec, OptimizerConfig, ScheduleConfig, TermSpec, TrainConfig,
)
from lrfr.training.objective import Objective
from lrfr.training.recognizability_term import RecognizabilityTerm

EXPLORE_SET = "explore"


@dataclass(frozen=True)
class Method:
    """One row of Table 4: a head and, for the RI rows, Eq. 10's weights (alpha L1, beta ID, gamma MSE)."""

    head: str
    head_kwargs: dict[str, Any] = field(default_factory=dict)
    ri_weights: tuple[float, float, float] | None = None
    ri_kwargs: dict[str, Any] = field(default_factory=dict)  # the row's own recognizability-term options

    @property
    def uses_ui(self) -> bool:
        return self.ri_weights is not None


DEFAULT_WEIGHTS = (5.0, 2.0, 1.0)  # Sec. 4.2 / Fig. 3: alpha = 5, beta = 2, gamma = 1


def table4_methods(alpha: float = 5.0, beta: float = 2.0, gamma: float = 1.0) -> dict[str, Method]:
    """Table 4's rows in the paper's order; I, II, III keep one of Eq. 10's extra terms each."""
    return {
        "Cross Entropy": Method("softmax"),
        "NormFace": Method("normface"),
        "CosFace": Method("cosface"),
        # MV-Softmax and MagFace as their official implementations run them (easy_margin=True: the margin
        # only where cos theta_y > 0); the heads' default is the papers' loss.
        "MV-Softmax": Method("mv_softmax", {"easy_margin": True}),
        "CurricularFace": Method("curricularface"),
        "MagFace": Method("magface", {"easy_margin": True}),
        "AdaFace": Method("adaface"),
        "Baseline (ArcFace)": Method("arcface"),
        # Row I: the ID loss on the RI of Eq. 1-3 of the embedding itself (id_source="embedding"). With alpha =
        # gamma = 0 the learned RI of Eq. 4 has no target to follow and the regression layer alone drives L_ID
        # to 0 (its bias rises) without any gradient reaching the backbone: the row would be ArcFace alone.
        "I": Method("arcface", ri_weights=(0.0, beta, 0.0), ri_kwargs={"id_source": "embedding"}),
        "II": Method("arcface", ri_weights=(0.0, 0.0, gamma)),
        "III": Method("arcface", ri_weights=(alpha, 0.0, 0.0)),
        "Ours": Method("arcface", ri_weights=(alpha, beta, gamma)),
    }


@dataclass(frozen=True)
class FineTuning:
    """Everything of a fine-tuning run except the method (the chapter's parameters)."""

    data_root: str
    pretrained: str  # run folder (or .safetensors) of the pre-trained backbone
    backbone: str = "quick"
    input_size: int = 32
    embedding_size: int = 128
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)  # the pre-trained backbone's other kwargs (widths)
    epochs: int = 6
    batch_size: int = 64
    lr: float = 0.05
    seed: int = 0
    train_set: str = "tinyface_train"  # a DATASETS factory reading <data_root>/tinyface
    ri_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. tau, ui_statistics
    num_workers: int = 0


def finetune_config(name: str, method: Method, setting: FineTuning) -> ExperimentConfig:
    """The ExperimentConfig of ``method`` fine-tuned as ``setting`` says (multistep lr at 2/3 of the epochs)."""
    root = Path(setting.data_root)
    terms = [TermSpec(name="cls", kind="classification")]
    data = {"main": _in_memory(setting.train_set, root / "tinyface", setting.input_size)}
    if method.ri_weights is not None:
        alpha, beta, gamma = method.ri_weights
        kwargs = {"alpha": alpha, "beta": beta, "gamma": gamma, **setting.ri_kwargs, **method.ri_kwargs}
        terms.append(TermSpec(name="ri", kind="recognizability", kwargs=kwargs))
        data["ui"] = _in_memory("ui", root / "ui", setting.input_size)
    return ExperimentConfig(
        name=name,
        train=TrainConfig(
            seed=setting.seed, epochs=setting.epochs, batch_size=setting.batch_size, num_workers=setting.num_workers,
            optimizer=OptimizerConfig(lr=setting.lr),
            schedule=ScheduleConfig(name="multistep", milestones=[max(1, round(2 * setting.epochs / 3))]),
        ),
        model=ModelSpec(
            backbone=setting.backbone,
            backbone_kwargs={"input_size": setting.input_size, "embedding_size": setting.embedding_size,
                             **setting.backbone_kwargs},
            heads={"main": HeadSpec(kind=method.head, kwargs=dict(method.head_kwargs))},
            terms=terms,
            pretrained=setting.pretrained,
        ),
        data=data,
    )


def _in_memory(factory: str, root: Path, input_size: int) -> DataSpec:
    return DataSpec("in_memory", {"dataset": factory, "root": str(root), "input_size": input_size})


def with_weights(method: Method, alpha: float, beta: float, gamma: float) -> Method:
    """``method`` with Eq. 10's weights replaced (the Fig. 3 sweeps)."""
    return replace(method, ri_weights=(alpha, beta, gamma))


def recognizability_term(objective: Objective) -> RecognizabilityTerm | None:
    """The model's recognizability term, if it was trained with one."""
    return next((t for t in objective.terms if isinstance(t, RecognizabilityTerm)), None)


# ----------------------------------------------------------------------------- the explore set


def tinyface_subset(test: TinyFaceTest, identities: int | None = None, distractors: int | None = None,
                    seed: int = 0) -> TinyFaceTest:
    """``test`` restricted to ``identities`` test identities (a seeded random choice; probes and gallery
    matches of the others dropped) and its first ``distractors`` distractors; None keeps all."""
    labels = np.unique([r.label for r in test.probe])
    if identities is not None and not 1 <= identities <= len(labels):
        raise ValueError(f"identities {identities!r} is not valid; expected 1 to {len(labels)} (the test identities)")
    if distractors is not None and not 0 <= distractors <= len(test.distractors):
        raise ValueError(f"distractors {distractors!r} is not valid; expected 0 to {len(test.distractors)}")
    chosen = set(np.random.default_rng(seed).choice(labels, identities, replace=False).tolist()
                 if identities is not None else labels.tolist())
    return replace(test, probe=tuple(r for r in test.probe if r.label in chosen),
                   gallery=tuple(r for r in test.gallery if r.label in chosen),
                   distractors=test.distractors[:distractors])


@dataclass(frozen=True)
class ExploreSet:
    """TinyFace test faces (probe, gallery, distractor) and the UI faces, embedded by one model.

    ``embeddings`` are the raw backbone embeddings v; ``attended`` the attention module's v_attn
    (RI models only); ``ri_learned`` the regression module's output (RI models only); ``ri_target``
    Eq. 3 with the gallery identity templates as prototypes (NaN without an identity);
    ``ui_distance`` = 1 - cos(v, UI center); ``norms`` = ||v|| (MagFace's quality).
    """

    records: tuple[FaceRecord, ...]
    split: np.ndarray
    labels: np.ndarray
    embeddings: np.ndarray
    norms: np.ndarray
    center: np.ndarray
    ui_distance: np.ndarray
    ri_target: np.ndarray
    ri_learned: np.ndarray | None
    attended: np.ndarray | None

    def part(self, *splits: str) -> np.ndarray:
        """Boolean mask of the rows in ``splits``."""
        return np.isin(self.split, splits)


def explore_set(
    objective: Objective, test: TinyFaceTest, ui: FaceDataset, batch_size: int = 256, num_workers: int = 0
) -> ExploreSet:
    """Embed TinyFace's test sets and the UI set with ``objective`` and score every face (see ExploreSet);
    the images are streamed (:func:`~lrfr.protocols.embeddings.image_batches`), only the outputs kept."""
    records = (*test.probe, *test.gallery, *test.distractors, *ui.records)
    split = np.array(["probe"] * len(test.probe) + ["gallery"] * len(test.gallery)
                     + ["distractor"] * len(test.distractors) + ["ui"] * len(ui.records))
    labels = np.array([r.label if s != "ui" else -1 for r, s in zip(records, split)], dtype=np.int64)
    images = FaceDataset(records, objective.backbone.input_size)
    if recognizability_term(objective) is not None:
        outputs = recognizability_outputs(objective, images, batch_size=batch_size, num_workers=num_workers)
        raw, attended, learned = outputs["embedding"], outputs["attended"], outputs["ri_learned"]
    else:
        extracted = extract_embeddings(
            objective.backbone, images, batch_size=batch_size, num_workers=num_workers, progress=False
        )
        raw, attended, learned = extracted.embeddings * extracted.norms[:, None], None, None
    center = ui_center(raw[split == "ui"])
    return ExploreSet(
        records=records, split=split, labels=labels, embeddings=raw, norms=np.linalg.norm(raw, axis=1),
        center=center, ui_distance=ers_quality(raw, center),
        ri_target=_target_ri(raw, labels, split, center), ri_learned=learned, attended=attended,
    )


def _target_ri(embeddings: np.ndarray, labels: np.ndarray, split: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Eq. 3 for every labelled face, the gallery identity templates standing in for the class
    prototypes w (the test identities are not the training classes); NaN for unlabelled faces."""
    gallery = split == "gallery"
    templates, identities = identity_templates(embeddings[gallery], labels[gallery])
    ri = np.full(len(labels), np.nan)
    known = np.isin(labels, identities) & (labels >= 0)
    if known.any():
        index = np.searchsorted(identities, labels[known])
        terms = recognizability_index(
            torch.as_tensor(embeddings[known]), torch.as_tensor(index), torch.as_tensor(templates), torch.as_tensor(center)
        )
        ri[known] = terms.ri.numpy()
    return ri


def save_explore_set(run: RunFolder, data: ExploreSet, source: str) -> None:
    """Write the dashboard contract: embeddings/explore.parquet and ui_center.json. ``ri_target`` is
    -1 for faces without an identity (Eq. 3 is never negative, so -1 cannot be a real RI)."""
    metadata: dict[str, Any] = {
        "path": np.array([str(r.path) for r in data.records]),
        "split": data.split,
        "native_height": native_heights(data.records),
        "ri_target": np.nan_to_num(data.ri_target, nan=-1.0),
        "ui_distance": data.ui_distance,
    }
    if data.ri_learned is not None:
        metadata["ri_learned"] = data.ri_learned
    run.save_embeddings(EXPLORE_SET, data.embeddings, data.labels, metadata)
    run.write_json("ui_center.json", {"center": data.center.tolist(), "embedding_set": EXPLORE_SET, "source": source})


# ----------------------------------------------------------------------------- quality scores and ERC


def ser_fiq_quality(
    objective: Objective, images: Dataset | torch.Tensor, passes: int = 20, rate: float = 0.5, seed: int = 0,
    num_workers: int = 0, batch_size: int = 64,
) -> np.ndarray:
    """SER-FIQ (Terhorst et al. 2020) of ``images`` (a Dataset at the backbone's input, streamed) with the
    backbone head's own dropout layer set to ``rate`` for the stochastic passes (restored afterwards):
    dropout before the embedding layer. The dropout sits in the head, so the feature maps are computed once
    and only the head runs ``passes`` times: the same scores (same seed, same batches) as ``passes`` passes of
    the whole backbone, at about 1/``passes`` of the cost."""
    backbone = objective.backbone
    dropout = next(m for m in backbone.head.modules() if isinstance(m, nn.Dropout))
    with eval_mode(backbone), torch.inference_mode():
        maps = torch.cat([backbone.features(batch).float().cpu() for batch, _ in image_batches(
            images, batch_size=batch_size, num_workers=num_workers, device=module_device(backbone))])
    original, dropout.p = dropout.p, rate
    try:
        return ser_fiq(backbone.head, maps.to(module_device(backbone)), dropout, passes=passes, seed=seed,
                       batch_size=batch_size)
    finally:
        dropout.p = original


def per_row(qualities: dict[str, np.ndarray], faces: np.ndarray) -> dict[str, np.ndarray]:
    """Each quality of the faces ``faces`` (a boolean mask over the rows, as :func:`quality_scores` takes) as
    one value per row, NaN on the other rows: the form :func:`erc_curves` reads."""
    spread = {}
    for name, values in qualities.items():
        spread[name] = np.full(len(faces), np.nan)
        spread[name][faces] = values
    return spread


def quality_scores(data: ExploreSet, faces: np.ndarray) -> dict[str, np.ndarray]:
    """Quality of the faces ``faces`` (mask) by every embedding-based score (higher = better):
    learned RI (RI models), ERS = distance to the UI center, MagFace's embedding norm, and the
    CR-FIQA certainty ratio against the gallery templates of the face's own identity (the label is
    used: an oracle form of CR, which CR-FIQA's regression head learns to predict)."""
    gallery = data.split == "gallery"
    templates, identities = identity_templates(data.embeddings[gallery], data.labels[gallery])
    scores = {
        "ERS (distance to UI center)": data.ui_distance[faces],
        "MagFace (norm)": data.norms[faces],
        "CR-FIQA (certainty ratio)": certainty_ratio(data.embeddings[faces], data.labels[faces], templates, identities),
    }
    if data.ri_learned is not None:
        scores = {"RI (learned)": data.ri_learned[faces], **scores}
    return scores


@dataclass(frozen=True)
class ProbeGalleryPairs:
    """Cross-resolution verification pairs of a test set (Fig. 7): probe index, gallery index (into the
    probe and gallery rows of the faces), whether genuine, and the probe identity (the bootstrap unit)."""

    pairs: np.ndarray
    is_genuine: np.ndarray
    units: np.ndarray


def probe_gallery_pairs(data: ExploreSet, n_genuine: int, n_impostor: int, seed: int = 0) -> ProbeGalleryPairs:
    """Probe-vs-gallery pairs of ``data`` (:func:`lrfr.protocols.erc.cross_resolution_pairs`): the papers'
    ERC compares probes with their gallery; both counts are capped at the pairs available."""
    probe_labels, gallery_labels = data.labels[data.part("probe")], data.labels[data.part("gallery")]
    genuine, impostor = cross_pair_counts(probe_labels, gallery_labels)
    pairs, is_genuine = cross_resolution_pairs(probe_labels, gallery_labels, min(n_genuine, genuine),
                                               min(n_impostor, impostor), seed)
    return ProbeGalleryPairs(pairs, is_genuine, probe_labels[pairs[:, 0]])


def erc_curves(
    data: ExploreSet, qualities: dict[str, np.ndarray], pairs: ProbeGalleryPairs, *,
    fmrs: tuple[float, ...] = (1e-2, 1e-3), seed: int = 0,
) -> dict[str, Any]:
    """ERC (Sec. 4.4, Fig. 7), fixed variant, on probe-vs-gallery ``pairs``: one curve per quality
    (``qualities[name]``: one value per row of ``data``, higher = better; a pair's is the lower of its two
    faces'), comparison scores = cosine of ``data``'s embeddings, thresholds fixed on all impostor pairs."""
    scores, quality = _pair_scores_and_qualities(data, qualities, pairs)
    return {name: error_versus_reject(scores, pairs.is_genuine, q, fmrs=fmrs, seed=seed) for name, q in quality.items()}


def erc_area_statistics(
    data: ExploreSet, qualities: dict[str, np.ndarray], pairs: ProbeGalleryPairs, fmr: float, *,
    reject_fractions: Sequence[float] = REJECT_FRACTIONS, seed: int = 0,
) -> dict[str, Statistic]:
    """Each quality's ERC area at ``fmr`` (:func:`erc_area_statistic`) on the same pairs, for a paired
    bootstrap over the probe identities (``pairs.units``)."""
    scores, quality = _pair_scores_and_qualities(data, qualities, pairs)
    return {name: erc_area_statistic(scores, pairs.is_genuine, q, fmr, reject_fractions=reject_fractions, seed=seed)
            for name, q in quality.items()}


def _pair_scores_and_qualities(data: ExploreSet, qualities: dict[str, np.ndarray],
                               pairs: ProbeGalleryPairs) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    probe, gallery = np.flatnonzero(data.part("probe")), np.flatnonzero(data.part("gallery"))
    first, second = probe[pairs.pairs[:, 0]], gallery[pairs.pairs[:, 1]]
    scores = pair_scores(data.embeddings[first], data.embeddings[second])
    return scores, {name: np.minimum(q[first], q[second]) for name, q in qualities.items()}


def erc_area_statistic(
    scores: np.ndarray, is_genuine: np.ndarray, quality: np.ndarray, fmr: float, *,
    reject_fractions: Sequence[float] = REJECT_FRACTIONS, seed: int = 0,
) -> Statistic:
    """The ERC's mean FNMR (%) over ``reject_fractions`` (trapezoids divided by their span) at ``fmr``, fixed
    variant, as a :class:`lrfr.stats.Statistic` of pair weights: each resample sets the threshold on its
    weighted impostors (as :func:`lrfr.stats.rate_at`) and rejects the lowest-quality weighted fraction of
    all pairs (ties in the seeded random order of :func:`lrfr.protocols.erc.error_versus_reject`). With
    unit weights it equals ``100 * erc_area(error_versus_reject(...)) / span``."""
    scores, quality = np.asarray(scores, dtype=np.float64), np.asarray(quality, dtype=np.float64)
    is_genuine, fractions = np.asarray(is_genuine, dtype=bool), np.asarray(reject_fractions, dtype=np.float64)
    if not (scores.shape == quality.shape == is_genuine.shape) or scores.ndim != 1 or len(fractions) < 2:
        raise ValueError(f"scores {scores.shape}, is_genuine {is_genuine.shape}, quality {quality.shape}; expected (N,) "
                         "each, and at least two reject fractions")
    order = np.lexsort((np.random.default_rng(seed).permutation(len(quality)), quality))
    sorted_scores, genuine = scores[order], is_genuine[order]
    impostors = np.flatnonzero(~genuine)
    impostors = impostors[np.argsort(-sorted_scores[impostors], kind="stable")]
    span = fractions[-1] - fractions[0]

    def statistic(w: np.ndarray) -> np.ndarray:
        w = w[:, order]
        cumulative = np.cumsum(w[:, impostors], axis=1)
        allowed = np.floor(np.round(fmr * cumulative[:, -1], 9))
        threshold = sorted_scores[impostors][np.argmax(cumulative > allowed[:, None], axis=1)]
        before = np.cumsum(w, axis=1) - w
        genuine_w = w * genuine
        missed_w = genuine_w * (sorted_scores[None] <= threshold[:, None])
        fnmr = []
        for fraction in fractions:
            kept = before >= np.floor(fraction * w.sum(1) + 1e-9)[:, None]
            with np.errstate(invalid="ignore", divide="ignore"):  # no genuine pair kept: NaN, dropped by the interval
                fnmr.append((missed_w * kept).sum(1) / (genuine_w * kept).sum(1))
        fnmr = np.stack(fnmr, 1)
        return 100 * np.sum(np.diff(fractions) * (fnmr[:, 1:] + fnmr[:, :-1]) / 2, axis=1) / span

    return Statistic(statistic, len(scores))


# ----------------------------------------------------------------------------- identification


def tinyface_identification(data: ExploreSet, vectors: np.ndarray | None = None, distractors: bool = False) -> Identification:
    """Per-probe 1:N search of the probes in the gallery (with the distractors if ``distractors``: Table 1's
    two columns; Table 4 is without), by cosine of ``vectors`` (default: the raw embeddings v; e.g. the
    attended embeddings), kept per probe for the identity bootstrap."""
    vectors = data.embeddings if vectors is None else vectors
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    probe = data.part("probe")
    gallery = data.part("gallery", "distractor") if distractors else data.part("gallery")
    return identify(unit[probe], unit[gallery], data.labels[probe], data.labels[gallery])


def tinyface_rank1(data: ExploreSet, vectors: np.ndarray | None = None) -> dict[str, float]:
    """Rank-1 (%) of the probes against the gallery with and without the distractors (Table 1's columns)."""
    return {setting: tinyface_identification(data, vectors, with_distractors).cmc(1)
            for setting, with_distractors in (("w/ dis", True), ("w/o dis", False))}


class AttendedEmbedder(Embedder):
    """An RI model's attended embeddings v_attn (Eq. 8-9, the attention module on the backbone's feature
    map) as an :class:`~lrfr.models.embedder.Embedder`, for the benchmark protocols."""

    def __init__(self, objective: Objective) -> None:
        super().__init__(InputSpec(size=objective.backbone.input_size))
        self.term = _single_recognizability_term(objective)
        self.objective = objective

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.term.predict(self.objective.backbone(inputs, return_feature_map=True).feature_map)[1]


def recognizability_outputs(
    objective: Objective, images: Dataset | torch.Tensor, *, batch_size: int = 256, num_workers: int = 0
) -> dict[str, np.ndarray]:
    """NumPy ``embedding`` (N, D) (raw backbone output v), ``attended`` (N, D) and ``ri_learned`` (N,) of
    ``images`` (a Dataset or (N, 3, H, W) tensor at the backbone's input size, streamed by
    :func:`~lrfr.protocols.embeddings.image_batches`), in eval mode on the model's device.

    ``objective`` must hold exactly one :class:`~lrfr.training.recognizability_term.RecognizabilityTerm`.
    """
    term = _single_recognizability_term(objective)
    device = module_device(objective)
    columns: dict[str, list[torch.Tensor]] = {"embedding": [], "attended": [], "ri_learned": []}
    with eval_mode(objective), torch.inference_mode():
        for batch, _ in image_batches(images, batch_size=batch_size, num_workers=num_workers, device=device):
            output = objective.backbone(batch, return_feature_map=True)
            ri, attended = term.predict(output.feature_map)
            for key, value in zip(columns, (output.embedding, attended, ri)):
                columns[key].append(value.float().cpu())
    return {key: torch.cat(values).numpy() for key, values in columns.items()}


def _single_recognizability_term(objective: Objective) -> RecognizabilityTerm:
    terms = [term for term in objective.terms if isinstance(term, RecognizabilityTerm)]
    if len(terms) != 1:
        raise ValueError(f"the objective holds {len(terms)} recognizability terms; expected exactly one")
    return terms[0]


SCFACE_COLUMNS = {"d1": "4.2m", "d2": "2.6m", "d3": "1.0m", "mean": "Avg."}  # Table 2's headers


def paper_cells(values: dict[tuple[str, str, str], Any], method: str) -> dict[tuple[str, str, str], Any]:
    """Benchmark results keyed (benchmark, setting, metric) (:class:`lrfr.protocols.benchmarks.Outcomes`'s
    statistics or estimates, in percent) as Tables 2-3 cells (row = ``method``, column, metric); SurvFace's
    AUC has no cell and is left out."""
    cells = {}
    for (benchmark, setting, metric), value in values.items():
        if benchmark == "SCface" and setting in SCFACE_COLUMNS:
            cells[(method, SCFACE_COLUMNS[setting], "Rank-1 IR")] = value
        elif "@" in metric:
            name, rate = metric.split("=")
            cells[(method, rate, name)] = value
    return cells

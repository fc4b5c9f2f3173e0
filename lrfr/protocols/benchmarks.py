"""One protocol function per low-resolution benchmark, each returning a tidy table.

Every function takes a model (an :class:`~lrfr.models.embedder.Embedder` or a backbone, run by
:func:`~lrfr.protocols.embeddings.extract_embeddings`), or a function mapping a sequence of
:class:`~lrfr.data.base.FaceRecord` to an (N, D) array, and a loaded dataset, and
returns a list of rows ``{"benchmark", "setting", "metric", "value"}`` (value in [0, 1]); the
SCface split protocol adds a ``"split"`` key (the split index, or "mean" / "std").

Each image set is embedded once per call, and with a ``run`` cached as a run-folder embedding set
(``<benchmark>_<part>[_flip]``): a later call with the same run reuses it instead of embedding again,
so a run folder holds one model's embeddings (a set saved for other images raises BenchmarkError).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from lrfr.data.base import FaceRecord
from lrfr.data.loaders import PairSet, SCFaceSet, SurvFaceIdentification, SurvFaceVerification, TinyFaceTest
from lrfr.models.embedder import Embedder
from lrfr.protocols.embeddings import extract_embeddings
from lrfr.protocols.identification import evaluate_identification
from lrfr.protocols.open_set import SURVFACE_FARS, SURVFACE_FPIRS, identity_templates
from lrfr.protocols.search import mate_ranks, top_k
from lrfr.protocols.verification import kfold_accuracy, pair_scores
from lrfr.runs import RunFolder
from lrfr.stats import Bootstrap, Estimate, Statistic, rate_at, subset_mean, tpir_scores
from lrfr.stats import auc as auc_statistic

RecordEmbedder = Callable[[Sequence[FaceRecord]], np.ndarray]
Model = Embedder | nn.Module
Row = dict[str, Any]
TINYFACE_RANKS = (1, 5, 20, 50)
SCFACE_SUBJECTS, SCFACE_TEST_SUBJECTS = 130, 80
OPEN_SET_RANK = 20  # SurvFace's TPIR20


class BenchmarkError(ValueError):
    """A protocol was asked something its inputs cannot answer; the message says what and why."""


@dataclass(frozen=True)
class Outcomes:
    """A benchmark's results per item (probe or pair), kept for the identity bootstrap (:mod:`lrfr.stats`):
    ``units`` (N,) each item's identity (negative: an unlabelled item, its own unit) and ``statistics``,
    (benchmark, setting, metric) -> a :class:`~lrfr.stats.Statistic` over those N items (values in [0, 1])."""

    units: np.ndarray
    statistics: dict[tuple[str, str, str], Statistic]

    def rows(self) -> list[Row]:
        """The protocol's rows: each statistic's value on the full data."""
        return [_row(benchmark, setting, metric, s.value()) for (benchmark, setting, metric), s in self.statistics.items()]

    def estimates(self, resamples: int = 1000, seed: int = 0, scale: float = 1.0) -> dict[tuple[str, str, str], Estimate]:
        """Each statistic times ``scale`` (100: percent) with its 95 % identity-bootstrap interval (the same
        resamples for every statistic)."""
        boot = Bootstrap(self.units, resamples=resamples, seed=seed)
        return {key: boot.estimate(statistic * scale) for key, statistic in self.statistics.items()}


# ----------------------------------------------------------------------------- embedding, cached


def as_embedder(embed: RecordEmbedder | Model, flip_fusion: bool, batch_size: int) -> RecordEmbedder:
    """A model (:class:`~lrfr.models.embedder.Embedder` or backbone) as a function of records, through
    :func:`~lrfr.protocols.embeddings.extract_embeddings`; a function of records as is (flip fusion is
    then its own business)."""
    if isinstance(embed, nn.Module):
        return lambda records: extract_embeddings(
            embed, records, batch_size=batch_size, flip_fusion=flip_fusion, progress=False
        ).embeddings
    if flip_fusion:
        raise BenchmarkError("flip_fusion=True needs a model; an embedding function must fuse flips itself")
    if not callable(embed):
        raise BenchmarkError(f"embed has type {type(embed).__name__}; expected a model or a function of records")
    return embed


def embed_records(
    embed: RecordEmbedder, records: Sequence[FaceRecord], name: str, run: RunFolder | None = None
) -> np.ndarray:
    """(N, D) embeddings of ``records``: read from ``run``'s set ``name`` if saved, else computed (and saved)."""
    if not records:
        raise BenchmarkError(f"embedding set {name!r} has no images")
    paths = np.array([str(record.path) for record in records])
    if run is not None and name in run.embedding_sets():
        cached = run.load_embeddings(name)
        if not np.array_equal(cached.metadata.get("path"), paths):
            raise BenchmarkError(
                f"embedding set {name!r} of {run} holds other images than the {len(records)} given; "
                "delete it or use another run folder"
            )
        return np.array(cached.embeddings)
    vectors = np.asarray(embed(records), dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(records) or not np.isfinite(vectors).all():
        raise BenchmarkError(f"embeddings of {name!r} have shape {vectors.shape}; expected ({len(records)}, D) finite")
    if run is not None:
        run.save_embeddings(name, vectors, [record.label for record in records], {"path": paths})
    return vectors


def _set_name(benchmark: str, part: str, flip_fusion: bool) -> str:
    return f"{benchmark.lower()}_{part}" + ("_flip" if flip_fusion else "")


def _row(benchmark: str, setting: str, metric: str, value: float) -> Row:
    return {"benchmark": benchmark, "setting": setting, "metric": metric, "value": float(value)}


# ----------------------------------------------------------------------------- TinyFace


def evaluate_tinyface(
    embed: RecordEmbedder | Model,
    data: TinyFaceTest,
    *,
    ranks: Sequence[int] = TINYFACE_RANKS,
    run: RunFolder | None = None,
    flip_fusion: bool = False,
    batch_size: int = 256,
) -> list[Row]:
    """TinyFace 1:N (Cheng et al. 2018, Sec. 4): rank-r and mAP of Probe vs Gallery_Match, without and
    (when loaded) with Gallery_Distractor as unlabelled gallery images."""
    embedder = as_embedder(embed, flip_fusion, batch_size)
    sets = {"probe": data.probe, "gallery": data.gallery, "distractor": data.distractors}
    part = {name: embed_records(embedder, records, _set_name("TinyFace", name, flip_fusion), run)
            for name, records in sets.items() if records}
    gallery = np.concatenate([part["gallery"], *([part["distractor"]] if data.distractors else [])])
    gallery_labels = [r.label for r in data.gallery] + [-1] * len(data.distractors)
    probe_labels = [r.label for r in data.probe]
    settings = {"without distractors": False, **({"with distractors": True} if data.distractors else {})}
    rows = []
    for setting, with_distractors in settings.items():
        result = evaluate_identification(
            part["probe"], gallery, probe_labels, gallery_labels, ranks=ranks, distractors=with_distractors
        )
        rows += [_row("TinyFace", setting, f"rank-{r}", rate) for r, rate in result.cmc.items()]
        rows.append(_row("TinyFace", setting, "mAP", result.mean_average_precision))
    return rows


# ----------------------------------------------------------------------------- SCface


def _scface_hits(
    embedder: RecordEmbedder,
    mugshots: Sequence[FaceRecord],
    probes: Sequence[FaceRecord],
    group: str,
    flip_fusion: bool,
    run: RunFolder | None,
) -> np.ndarray:
    """(Q,) whether each probe (all distances and cameras) is its own subject's mugshot at rank 1; the sets are
    cached as ``scface_<group>_{mugshots,probes}``."""
    gallery = embed_records(embedder, mugshots, _set_name("SCface", f"{group}_mugshots", flip_fusion), run)
    embedded = embed_records(embedder, probes, _set_name("SCface", f"{group}_probes", flip_fusion), run)
    found = mate_ranks(embedded, gallery, [r.label for r in probes], [r.label for r in mugshots])
    hits = np.zeros(len(probes), dtype=bool)
    hits[found.probe_indices] = found.first_ranks == 1
    return hits


def _scface_statistics(hits: np.ndarray, probes: Sequence[FaceRecord]) -> dict[str, Statistic]:
    """Setting ("d1", "d2", ..., "mean") -> rank-1 of each distance's probes as a statistic over all probes
    (:func:`lrfr.stats.subset_mean`); "mean" is the unweighted mean over distances."""
    distances = np.array([r.metadata["distance"] for r in probes])
    rates = {f"d{d}": subset_mean(hits, distances == d) for d in sorted(set(distances.tolist()))}
    values = list(rates.values())
    return {**rates, "mean": sum(values[1:], values[0]) / len(values)}


def _scface_rank1(
    embedder: RecordEmbedder,
    mugshots: Sequence[FaceRecord],
    probes: Sequence[FaceRecord],
    group: str,
    flip_fusion: bool,
    run: RunFolder | None,
) -> dict[str, float]:
    """Setting ("d1", "d2", ..., "mean") -> rank-1 of each distance's probes (all cameras) vs the mugshots."""
    hits = _scface_hits(embedder, mugshots, probes, group, flip_fusion, run)
    return {setting: statistic.value() for setting, statistic in _scface_statistics(hits, probes).items()}


def scface_outcomes(
    embed: RecordEmbedder | Model,
    data: SCFaceSet,
    *,
    run: RunFolder | None = None,
    flip_fusion: bool = False,
    batch_size: int = 256,
) -> Outcomes:
    """:func:`evaluate_scface` per probe, for the identity bootstrap: ``("SCface", setting, "rank-1")`` of every
    distance and their mean, as statistics over all probes (units: the probes' subjects)."""
    embedder = as_embedder(embed, flip_fusion, batch_size)
    hits = _scface_hits(embedder, data.mugshots, data.probes, "all", flip_fusion, run)
    statistics = {("SCface", setting, "rank-1"): s for setting, s in _scface_statistics(hits, data.probes).items()}
    return Outcomes(np.array([r.label for r in data.probes], dtype=np.int64), statistics)


def evaluate_scface(
    embed: RecordEmbedder | Model,
    data: SCFaceSet,
    *,
    run: RunFolder | None = None,
    flip_fusion: bool = False,
    batch_size: int = 256,
) -> list[Row]:
    """SCface on all subjects (Chai et al. 2023, Table 2): rank-1 of the surveillance probes at each
    distance (all five cameras) against the HR mugshot gallery, and the mean over distances."""
    return scface_outcomes(embed, data, run=run, flip_fusion=flip_fusion, batch_size=batch_size).rows()


def scface_splits(
    subjects: Sequence[str], n_test: int = SCFACE_TEST_SUBJECTS, repeats: int = 10, seed: int = 0
) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """``repeats`` random (test, fine-tune) subject splits, ``n_test`` test subjects each (Ling et al.
    2023, Sec. 4: 80 of SCface's 130 for testing, the other 50 for fine-tuning), seeded."""
    pool = sorted(set(subjects))
    if not isinstance(n_test, int) or not 1 <= n_test < len(pool):
        raise BenchmarkError(
            f"n_test {n_test!r} is not valid for {len(pool)} subjects; expected an int in [1, {len(pool) - 1}] "
            f"(SCface: {SCFACE_TEST_SUBJECTS} of {SCFACE_SUBJECTS}) so that fine-tuning subjects remain"
        )
    if not isinstance(repeats, int) or repeats < 1:
        raise BenchmarkError(f"repeats {repeats!r} is not valid; expected an int >= 1")
    rng = np.random.default_rng(seed)
    splits = []
    for _ in range(repeats):
        order = rng.permutation(len(pool))
        splits.append((tuple(sorted(pool[i] for i in order[:n_test])), tuple(sorted(pool[i] for i in order[n_test:]))))
    return splits


def evaluate_scface_splits(
    fine_tune: Callable[[tuple[str, ...]], RecordEmbedder | Model],
    data: SCFaceSet,
    splits: Sequence[tuple[Sequence[str], Sequence[str]]],
    *,
    run: RunFolder | None = None,
    flip_fusion: bool = False,
    batch_size: int = 256,
) -> list[Row]:
    """The SCface fine-tuning protocol (Ling et al. 2023, Sec. 4): for each (test, fine-tune) split,
    ``fine_tune(fine-tune subjects)`` gives the embedder evaluated on the test subjects (rank-1 per
    distance and mean); then the mean and std (ddof=0) over splits. ``fine_tune`` is not called for
    a split whose embeddings ``run`` already holds."""
    per_split: list[dict[str, float]] = []
    for index, (test, train) in enumerate(splits):
        overlap = set(test) & set(train)
        if overlap:
            raise BenchmarkError(f"split {index} has subjects {sorted(overlap)} in both its test and fine-tune sets")
        chosen = set(test)
        mugshots = [r for r in data.mugshots if r.identity in chosen]
        probes = [r for r in data.probes if r.identity in chosen]
        if len(mugshots) != len(chosen):
            missing = sorted(chosen - {r.identity for r in mugshots})
            raise BenchmarkError(f"split {index}: test subjects {missing} have no mugshot in the data")
        embedder = _lazy_embedder(lambda train=tuple(train): as_embedder(fine_tune(train), flip_fusion, batch_size))
        per_split.append(_scface_rank1(embedder, mugshots, probes, f"split{index}", flip_fusion, run))
    return _split_rows(per_split)


def _lazy_embedder(make: Callable[[], RecordEmbedder]) -> RecordEmbedder:
    """An embedder built by ``make`` on its first use only (so cached splits skip fine-tuning)."""
    made: list[RecordEmbedder] = []

    def embed(records: Sequence[FaceRecord]) -> np.ndarray:
        if not made:
            made.append(make())
        return made[0](records)

    return embed


def _split_rows(per_split: Sequence[dict[str, float]]) -> list[Row]:
    """Per-split rows, then the mean and std over splits of each setting."""
    if not per_split:
        raise BenchmarkError("splits is empty; expected at least one (test, fine-tune) split")
    rows = [
        {**_row("SCface", s, "rank-1", v), "split": i} for i, rates in enumerate(per_split) for s, v in rates.items()
    ]
    for statistic, reduce in (("mean", np.mean), ("std", np.std)):
        rows += [
            {**_row("SCface", s, "rank-1", reduce([rates[s] for rates in per_split])), "split": statistic}
            for s in per_split[0]
        ]
    return rows


# ----------------------------------------------------------------------------- QMUL-SurvFace


def survface_outcomes(
    embed: RecordEmbedder | Model,
    verification: SurvFaceVerification,
    identification: SurvFaceIdentification,
    *,
    run: RunFolder | None = None,
    flip_fusion: bool = False,
    batch_size: int = 256,
) -> dict[str, Outcomes]:
    """:func:`evaluate_survface` per item, for the identity bootstrap: ``"verification"`` (TPR at each FAR and AUC
    over the pairs, a pair's unit the identity of its first face) and ``"open-set identification"`` (TPIR20 at
    each FPIR over the mated and unmated probes, :func:`lrfr.stats.tpir_scores`; an unmated probe its own unit)."""
    embedder = as_embedder(embed, flip_fusion, batch_size)
    pairs = embed_records(embedder, verification.records, _set_name("SurvFace", "verification", flip_fusion), run)
    scores = pair_scores(pairs[verification.pairs[:, 0]], pairs[verification.pairs[:, 1]])
    is_same = np.asarray(verification.is_same, dtype=bool)
    pair_statistics = {("SurvFace", "verification", f"TPR@FAR={far:g}"): rate_at(scores, is_same, far)
                       for far in SURVFACE_FARS}
    pair_statistics["SurvFace", "verification", "AUC"] = auc_statistic(scores, is_same)
    pair_units = np.array([verification.records[i].label for i in verification.pairs[:, 0]], dtype=np.int64)
    probes = [*identification.mated_probe, *identification.unmated_probe]
    gallery = embed_records(embedder, identification.gallery, _set_name("SurvFace", "gallery", flip_fusion), run)
    embedded = embed_records(embedder, probes, _set_name("SurvFace", "probes", flip_fusion), run)
    templates, identities = identity_templates(gallery, [r.label for r in identification.gallery])
    labels = np.array([r.label for r in probes], dtype=np.int64)
    mated = mate_ranks(embedded, templates, labels, identities)
    best, _ = top_k(embedded, templates, 1)
    probe_scores, is_mated = best[:, 0].astype(np.float64), np.zeros(len(probes), dtype=bool)
    probe_scores[mated.probe_indices] = tpir_scores(mated.first_ranks, mated.first_scores, OPEN_SET_RANK)
    is_mated[mated.probe_indices] = True
    probe_statistics = {("SurvFace", "open-set identification", f"TPIR{OPEN_SET_RANK}@FPIR={f:g}"):
                        rate_at(probe_scores, is_mated, f) for f in SURVFACE_FPIRS}
    return {"verification": Outcomes(pair_units, pair_statistics),
            "open-set identification": Outcomes(np.where(is_mated, labels, -1), probe_statistics)}


def evaluate_survface(
    embed: RecordEmbedder | Model,
    verification: SurvFaceVerification,
    identification: SurvFaceIdentification,
    *,
    run: RunFolder | None = None,
    flip_fusion: bool = False,
    batch_size: int = 256,
) -> list[Row]:
    """QMUL-SurvFace (Cheng et al. 2018b): verification TPR at FAR 0.3/0.1/0.01/0.001 and AUC; open-set
    TPIR20 at FPIR 0.3/0.2/0.1 of mated + unmated probes against one template per gallery identity."""
    outcomes = survface_outcomes(embed, verification, identification, run=run, flip_fusion=flip_fusion,
                                 batch_size=batch_size)
    return [row for part in outcomes.values() for row in part.rows()]


# ----------------------------------------------------------------------------- LFW / XQLFW


def evaluate_pairs(
    embed: RecordEmbedder | Model,
    data: PairSet,
    benchmark: str = "LFW",
    *,
    run: RunFolder | None = None,
    flip_fusion: bool = False,
    batch_size: int = 256,
) -> list[Row]:
    """LFW / XQLFW 1:1 verification (Huang et al. 2007; Knoche et al. 2021): the mean and std (ddof=0)
    of the accuracy on each pairs.txt fold at the threshold best on the other folds."""
    embedder = as_embedder(embed, flip_fusion, batch_size)
    embedded = embed_records(embedder, data.records, _set_name(benchmark, "pairs", flip_fusion), run)
    scores = pair_scores(embedded[data.pairs[:, 0]], embedded[data.pairs[:, 1]])
    result = kfold_accuracy(scores, data.is_same, data.folds)
    setting = f"{len(np.unique(data.folds))}-fold"
    return [_row(benchmark, setting, "accuracy", result.mean), _row(benchmark, setting, "accuracy std", result.std)]

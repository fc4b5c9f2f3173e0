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
from typing import Any

import numpy as np
from torch import nn

from lrfr.data.base import FaceRecord
from lrfr.data.loaders import PairSet, SCFaceSet, SurvFaceIdentification, SurvFaceVerification, TinyFaceTest
from lrfr.models.embedder import Embedder
from lrfr.protocols.embeddings import extract_embeddings
from lrfr.protocols.identification import evaluate_identification
from lrfr.protocols.open_set import SURVFACE_FARS, SURVFACE_FPIRS, identity_templates, open_set_identification
from lrfr.protocols.verification import auc, kfold_accuracy, pair_scores, tpr_at_far
from lrfr.runs import RunFolder

RecordEmbedder = Callable[[Sequence[FaceRecord]], np.ndarray]
Model = Embedder | nn.Module
Row = dict[str, Any]
TINYFACE_RANKS = (1, 5, 20, 50)
SCFACE_SUBJECTS, SCFACE_TEST_SUBJECTS = 130, 80


class BenchmarkError(ValueError):
    """A protocol was asked something its inputs cannot answer; the message says what and why."""


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


def _scface_rank1(
    embedder: RecordEmbedder,
    mugshots: Sequence[FaceRecord],
    probes: Sequence[FaceRecord],
    group: str,
    flip_fusion: bool,
    run: RunFolder | None,
) -> dict[str, float]:
    """Setting ("d1", "d2", ..., "mean") -> rank-1 of each distance's probes (all cameras) vs the mugshots;
    the sets are cached as ``scface_<group>_{mugshots,probes}``."""
    gallery = embed_records(embedder, mugshots, _set_name("SCface", f"{group}_mugshots", flip_fusion), run)
    embedded = embed_records(embedder, probes, _set_name("SCface", f"{group}_probes", flip_fusion), run)
    distances = np.array([r.metadata["distance"] for r in probes])
    labels = np.array([r.label for r in probes])
    gallery_labels = [r.label for r in mugshots]
    rates = {
        f"d{d}": evaluate_identification(
            embedded[distances == d], gallery, labels[distances == d], gallery_labels, ranks=(1,)
        ).cmc[1]
        for d in sorted(set(distances.tolist()))
    }
    return {**rates, "mean": float(np.mean(list(rates.values())))}


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
    embedder = as_embedder(embed, flip_fusion, batch_size)
    rates = _scface_rank1(embedder, data.mugshots, data.probes, "all", flip_fusion, run)
    return [_row("SCface", setting, "rank-1", rate) for setting, rate in rates.items()]


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
    embedder = as_embedder(embed, flip_fusion, batch_size)
    pairs = embed_records(embedder, verification.records, _set_name("SurvFace", "verification", flip_fusion), run)
    scores = pair_scores(pairs[verification.pairs[:, 0]], pairs[verification.pairs[:, 1]])
    rows = [_row("SurvFace", "verification", f"TPR@FAR={far:g}", tpr)
            for far, tpr in tpr_at_far(scores, verification.is_same, SURVFACE_FARS).items()]
    rows.append(_row("SurvFace", "verification", "AUC", auc(scores, verification.is_same)))
    probes = [*identification.mated_probe, *identification.unmated_probe]
    gallery = embed_records(embedder, identification.gallery, _set_name("SurvFace", "gallery", flip_fusion), run)
    embedded = embed_records(embedder, probes, _set_name("SurvFace", "probes", flip_fusion), run)
    templates, identities = identity_templates(gallery, [r.label for r in identification.gallery])
    labels = [r.label for r in probes]
    result = open_set_identification(embedded, labels, templates, identities, fpirs=SURVFACE_FPIRS)
    rows += [_row("SurvFace", "open-set identification", f"TPIR{result.rank}@FPIR={f:g}", tpir)
             for f, tpir in result.tpir.items()]
    return rows


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

"""Chapter 5: Grm, Özata, Štruc & Ekenel (2023) -- meet in the middle: multi-scale SR of the probe, degraded
and resolution-matched gallery hypotheses, and template/score fusion, on the SCface d1 layout.

* **Face SR** (Sec. 3.3): one EDSR per magnification (x2, x4, x8) trained with the L1 loss (EDSR's) on HR
  faces of the HR identity set and their bicubic-down-sampled copies (the "degradation (downsampling)
  pipeline"): :func:`edsr_config`.
* **Templates** (Sec. 3.4): every probe hypothesis (16 blur levels x |s| scales, Sec. 3.3) and every gallery
  hypothesis (degradation chains, Eq. 1, resolution-matched to the probe hypothesis, Sec. 3.2) is embedded
  once (:class:`Bank`); the ablation's rows are slices and fusions of the same templates
  (:func:`table2_rows`, :func:`table3_rows`), so a comparison between rows is paired by construction.
* **Identification**: every d1 probe against the one mugshot per subject, correlation similarity (Eq. 3),
  rank-1 per probe (:func:`rank1_hits`); intervals from the identity bootstrap (:mod:`lrfr.stats`).

Rows of Table 2 in the fusion terms of :mod:`lrfr.protocols.fusion` (the paper names only the columns):
multi-hypothesis SR is S_max over the probe's hypotheses (Sec. 4.2; its rank-1 equals Sec. 3.3's choice of
the hypothesis most similar to any gallery image); gallery degradations add S_max over the gallery hypotheses
(Sec. 4.2: "using the maximum score fusion"); the gallery hypotheses are the resolution-matched undegraded
image plus the degraded ones (choice: the undegraded one is kept). Multi-scale accumulation over the scales:
"S_max" = S_max on the probe side with T_add on the gallery side, and "T_add" = T_add on both sides -- Table 3
prints exactly Table 2's S_max and T_add cells in those combinations for all four models; "S_add" and
"T_concat" apply the fusion on both sides.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from lrfr.claims import ClaimResult, evaluate
from lrfr.data.gallery_degradations import DEGRADATIONS, chains
from lrfr.data.base import FaceDataset, FaceRecord
from lrfr.data.degrade import resize
from lrfr.data.loaders import SCFaceSet
from lrfr.io import atomic_write
from lrfr.models.embedder import Embedder
from lrfr.models.modes import eval_mode, module_device
from lrfr.protocols.fidelity import psnr
from lrfr.protocols.fusion import Fusion, first_ranks, fused_scores
from lrfr.protocols.hypotheses import GalleryHypotheses, ProbeHypotheses, gallery_templates, probe_templates
from lrfr.runs import RunFolder
from lrfr.stats import Bootstrap, Estimate, mean
from lrfr.training.config import DataSpec, ExperimentConfig, ModelSpec, OptimizerConfig, ScheduleConfig, TermSpec, TrainConfig

SCALES = (2, 4, 8)  # Sec. 3.4: x2, x4, x8 (48, 96, 192 px from SCface d1's ~22 x 29 faces)
PAPER_MODELS = ("MS1MV3-R50", "MS1MV3-R101", "Glint360k-R50", "Glint360k-R101")
METRIC = "Rank-1 IR"
BASELINE = "Baseline"
SINGLE, MULTI, RM, GD = "+Single Hypothesis SR", "+Multi Hypothesis SR", "+Resolution Matching", "+Gallery Degradations"
ACCUMULATION = "+Multi-scale Accumulation"
MULTI_SCALE = {  # Table 2's last block: column -> fusion over all scales' hypotheses (see the module docstring)
    "S_max": Fusion(probe="S_max", gallery="T_add"),
    "S_add": Fusion(probe="S_add", gallery="S_add"),
    "T_add": Fusion(probe="T_add", gallery="T_add"),
    "T_concat": Fusion(probe="T_concat", gallery="T_concat"),
}
TABLE3 = (  # Table 3: T_add fixed on one side, each fusion on the other; Sec. 4.2's final S_max -> S_add
    Fusion("T_add", "T_add"), Fusion("T_add", "S_add"), Fusion("T_add", "S_max"),
    Fusion("S_add", "T_add"), Fusion("S_max", "T_add"), Fusion("S_add", "S_max"),
)
CLAIMS = (
    "grm2023.single_sr_helps_2x", "grm2023.single_sr_hurts_8x",
    "grm2023.multi_beats_single_2x", "grm2023.multi_beats_single_4x", "grm2023.multi_beats_single_8x",
    "grm2023.degradations_help_2x", "grm2023.degradations_help_4x", "grm2023.degradations_help_8x",
    "grm2023.smax_gallery_beats_accumulation",
)


def row_name(block: str, scale: int | str | None = None) -> str:
    """Table 2's row: the block, and the scale ("2x") or fusion column where it has one."""
    if scale is None:
        return block
    return f"{block} {scale}x" if isinstance(scale, int) else f"{block} {scale}"


def fusion_row(fusion: Fusion) -> str:
    """Table 3's row name of a fusion."""
    return f"probe {fusion.probe}, gallery {fusion.gallery}"


# ------------------------------------------------------------------------------------------ face SR


@dataclass(frozen=True)
class SRTraining:
    """EDSR at one factor trained on ``images_per_identity`` HR faces per identity of ``<data_root>/<hr_folder>``,
    each down-sampled (bicubic) to ``lr_size`` px; the target is the face at ``lr_size * scale`` px."""

    blocks: int = 16  # EDSR baseline (Lim et al. Sec. 3.2)
    channels: int = 64
    bicubic_skip: bool = False  # EDSR predicts a residual over bicubic interpolation (lrfr.models.sr.edsr)
    lr_size: int = 16
    images_per_identity: int = 12
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-4  # EDSR: Adam, 1e-4
    hr_folder: str = "hr"
    keep_in_memory: bool = True
    num_workers: int = 0


def edsr_config(scale: int, data_root: str | Path, setting: SRTraining, seed: int = 0) -> ExperimentConfig:
    """The EDSR of Sec. 3.3 at ``scale`` (named ``grm-edsr-x<scale>``): L1 pixel loss, Adam, lr halved at 2/3 of the epochs."""
    hr = {"dataset": "per_identity", "base": "folder", "images": setting.images_per_identity,
          "root": str(Path(data_root) / setting.hr_folder), "input_size": setting.lr_size * scale}
    return ExperimentConfig(
        name=f"grm-edsr-x{scale}",
        train=TrainConfig(
            seed=seed, epochs=setting.epochs, batch_size=setting.batch_size, num_workers=setting.num_workers,
            clip_grad_norm=None,
            optimizer=OptimizerConfig(name="adamw", lr=setting.lr, weight_decay=0.0),  # Adam (no decay)
            schedule=ScheduleConfig(name="multistep", milestones=[max(1, round(2 * setting.epochs / 3))], gamma=0.5),
        ),
        model=ModelSpec(
            backbone=None, sr="edsr", sr_kwargs={"scale": scale, "blocks": setting.blocks, "channels": setting.channels,
                                                    "bicubic_skip": setting.bicubic_skip},
            heads={}, terms=[TermSpec(name="pixel", kind="pixel", kwargs={"lr": "sr.lr", "hr": "sr.hr", "loss": "l1"})],
            pretrained_modules=[],
        ),
        data={"sr": DataSpec("lr_pairs", {**hr, "lr_sizes": [setting.lr_size], "upsample": False,
                                          "keep_in_memory": setting.keep_in_memory})},
    )


def sr_fidelity(sr: torch.nn.Module, records: Sequence[FaceRecord], lr_size: int, scale: int,
                batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per-face PSNR (dB) against the HR face at ``lr_size * scale`` px of the EDSR output and of bicubic
    interpolation, both from the face bicubic-down-sampled to ``lr_size`` px (faces the SR never saw)."""
    faces = DataLoader(FaceDataset(list(records), lr_size * scale), batch_size=batch_size)
    ours, bicubic = [], []
    with eval_mode(sr), torch.inference_mode():
        for batch in faces:
            hr = batch["image"]
            lr = resize(hr, lr_size)
            ours.append(psnr(sr(lr.to(module_device(sr))).clamp(-1, 1).cpu(), hr).numpy())
            bicubic.append(psnr(resize(lr, hr.shape[-2:]), hr).numpy())
    return np.concatenate(ours), np.concatenate(bicubic)


# ------------------------------------------------------------------------------------------ templates


def sample_chains(count: int | None, seed: int = 0) -> list[tuple[str, ...]]:
    """The gallery hypotheses' chains: the undegraded image ``()`` first, then ``count`` chains of length
    1-3 drawn without replacement (seeded), or all 1463 (``count`` None, the paper's setting)."""
    every = chains()
    if count is None or count >= len(every):
        return [(), *every]
    picked = np.random.default_rng([seed, 5]).choice(len(every), size=count, replace=False)
    return [(), *(every[i] for i in sorted(picked))]


def rm_key(size: tuple[int, int], buckets: Sequence[int] | None) -> tuple[int, int]:
    """The probe size the gallery is resolution-matched to: its own, or the nearest of the square
    ``buckets`` by height (a budget choice: one gallery bank per bucket instead of per probe size)."""
    if not buckets:
        return size
    side = min(buckets, key=lambda b: (abs(b - size[0]), b))
    return side, side


@dataclass
class Bank:
    """Every template of the chapter, each computed once.

    ``baseline`` (P, D) probes and ``gallery`` (G, D) mugshots resized to the model input; ``probes[k]``
    (P, m, D): the m blur hypotheses super-resolved at x k (hypothesis 0 is sigma = 0, the single hypothesis);
    ``degraded[(k, key)]`` (G, n, D): the gallery hypotheses (chain 0 undegraded) resolution-matched to probes of
    size ``key`` at x k; ``keys`` (P,) each probe's RM key.
    """

    baseline: np.ndarray
    gallery: np.ndarray
    probes: dict[int, np.ndarray]
    degraded: dict[tuple[int, tuple[int, int]], np.ndarray]
    keys: list[tuple[int, int]]
    probe_labels: np.ndarray
    gallery_labels: np.ndarray


def build_bank(embedder: Embedder, data: SCFaceSet, distance: int, sr: Mapping[int, torch.nn.Module],
               sigmas: Sequence[float], gallery_chains: Sequence[tuple[str, ...]], rm_buckets: Sequence[int] | None,
               seed: int = 0, batch_size: int = 128, progress: bool = True) -> Bank:
    """Embed every probe hypothesis of the d``distance`` probes at every scale of ``sr`` and every gallery
    hypothesis for each (scale, RM key) the probes need."""
    probes, gallery = list(data.probes_at(distance)), list(data.mugshots)
    options = dict(batch_size=batch_size, progress=progress)
    baseline = probe_templates(embedder, ProbeHypotheses(probes, [0.0]), None, desc="baseline probes", **options)[:, 0]
    plain = gallery_templates(embedder, GalleryHypotheses(gallery, [()]), desc="gallery", **options)[:, 0]
    hypotheses = ProbeHypotheses(probes, sigmas)
    multi = {k: probe_templates(embedder, hypotheses, net, desc=f"probe hypotheses x{k}", **options) for k, net in sr.items()}
    sizes = [tuple(image.shape[-2:]) for image in hypotheses.images]
    keys = [rm_key(size, rm_buckets) for size in sizes]
    degraded = {}
    for k in sr:
        for key in sorted(set(keys)):
            target = (key[0] * k, key[1] * k)
            bank = GalleryHypotheses(gallery, gallery_chains, target, seed)
            degraded[(k, key)] = gallery_templates(embedder, bank, desc=f"gallery x{k} RM {key[0]}px", **options)
    return Bank(baseline, plain, multi, degraded, keys, np.array([r.label for r in probes]), np.array([r.label for r in gallery]))


# ------------------------------------------------------------------------------------------ identification


def scores(bank: Bank, probe: Mapping[int, np.ndarray] | np.ndarray, gallery: str, fusion: Fusion,
           scales: Sequence[int], chains_used: int | None = None) -> np.ndarray:
    """(P, G) fused similarity of the probes' templates with every mugshot under ``fusion``.

    ``probe``: (P, H, D) for one scale, or scale -> (P, H, D) stacked over ``scales``; ``gallery``: "plain"
    (the mugshot resized to the input) or "matched" (the RM'd hypotheses of the same scales, the first
    ``chains_used`` of them: 1 = RM only).
    """
    stacked = probe[:, None] if isinstance(probe, np.ndarray) else np.stack([probe[k] for k in scales], axis=1)
    out = np.zeros((len(stacked), len(bank.gallery_labels)), dtype=np.float32)
    keys = np.array([f"{h}x{w}" for h, w in bank.keys])
    for key in sorted(set(bank.keys)):
        rows = keys == f"{key[0]}x{key[1]}"
        if gallery == "plain":
            templates = np.repeat(bank.gallery[:, None, None], len(scales), axis=1)
        else:
            templates = np.stack([bank.degraded[(k, key)][:, :chains_used] for k in scales], axis=1)
        out[rows] = fused_scores(stacked[rows], templates, fusion)
    return out


def rank1_hits(bank: Bank, probe: Mapping[int, np.ndarray] | np.ndarray, gallery: str, fusion: Fusion,
               scales: Sequence[int], chains_used: int | None = None) -> np.ndarray:
    """(P,) rank-1 hits (1.0 / 0.0) of :func:`scores` (arguments as there)."""
    found = first_ranks(scores(bank, probe, gallery, fusion, scales, chains_used), bank.probe_labels, bank.gallery_labels)
    return (found == 1).astype(np.float64)


def rrssv(similarity: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray, subjects: int = 80,
          repeats: int = 10, seed: int = 0) -> np.ndarray:
    """Table 4's protocol: rank-1 (%) on ``repeats`` random draws of ``subjects`` subjects (their probes against
    their mugshots: Repeated Random Sub-Sampling Validation), one value per draw; the paper reports the mean."""
    rng = np.random.default_rng([seed, 80])
    subjects = min(subjects, len(gallery_labels))
    rates = []
    for _ in range(repeats):
        chosen = rng.choice(len(gallery_labels), size=subjects, replace=False)
        rows = np.isin(probe_labels, gallery_labels[chosen])
        found = first_ranks(similarity[np.ix_(rows, chosen)], probe_labels[rows], gallery_labels[chosen])
        rates.append(100 * float(np.mean(found == 1)))
    return np.array(rates)


def table2_hits(bank: Bank, scales: Sequence[int]) -> dict[str, np.ndarray]:
    """Table 2's rows (row name -> (P,) rank-1 hits) from one bank."""
    single_max = Fusion("S_max", "S_max")
    hits = {BASELINE: rank1_hits(bank, bank.baseline[:, None], "plain", single_max, [scales[0]])}
    for k in scales:
        hits[row_name(SINGLE, k)] = rank1_hits(bank, bank.probes[k][:, :1], "plain", single_max, [k])
        hits[row_name(MULTI, k)] = rank1_hits(bank, bank.probes[k], "plain", single_max, [k])
        hits[row_name(RM, k)] = rank1_hits(bank, bank.probes[k], "matched", single_max, [k], chains_used=1)
        hits[row_name(GD, k)] = rank1_hits(bank, bank.probes[k], "matched", single_max, [k])
    if len(scales) > 1:
        for column, fusion in MULTI_SCALE.items():
            hits[row_name(ACCUMULATION, column)] = rank1_hits(bank, bank.probes, "matched", fusion, scales)
    return hits


def table3_hits(bank: Bank, scales: Sequence[int]) -> dict[str, np.ndarray]:
    """Table 3's fusion combinations over all scales' probe and gallery hypotheses (row -> hits)."""
    return {fusion_row(f): rank1_hits(bank, bank.probes, "matched", f, scales) for f in TABLE3}


def estimates(hits: Mapping[str, np.ndarray], boot: Bootstrap) -> dict[str, Estimate]:
    """Rank-1 (%) of every row with its 95 % interval over identities."""
    return {row: boot.estimate(mean(h, 100)) for row, h in hits.items()}


def paired_effects(hits: Mapping[str, np.ndarray], boot: Bootstrap, baseline: str) -> dict[str, Estimate]:
    """Each row minus ``baseline`` (rank-1 points), paired over the same probes."""
    return {row: boot.estimate(mean(h, 100) - mean(hits[baseline], 100)) for row, h in hits.items() if row != baseline}


def decide_claims(hits: Mapping[str, np.ndarray], boot: Bootstrap, scales: Sequence[int]) -> list[ClaimResult]:
    """The chapter's claims (:data:`CLAIMS`) from paired rank-1 differences on the same probes."""
    pairs: dict[str, tuple[str, str]] = {
        "grm2023.single_sr_helps_2x": (row_name(SINGLE, 2), BASELINE),
        "grm2023.single_sr_hurts_8x": (row_name(SINGLE, 8), BASELINE),
        **{f"grm2023.multi_beats_single_{k}x": (row_name(MULTI, k), row_name(SINGLE, k)) for k in (2, 4, 8)},
        **{f"grm2023.degradations_help_{k}x": (row_name(GD, k), row_name(RM, k)) for k in (2, 4, 8)},
        "grm2023.smax_gallery_beats_accumulation": (fusion_row(Fusion("T_add", "S_max")), fusion_row(Fusion("T_add", "T_add"))),
    }
    results = []
    for claim_id, (better, worse) in pairs.items():
        if better not in hits or worse not in hits:
            continue
        a, b = mean(hits[better], 100), mean(hits[worse], 100)
        results.append(evaluate(claim_id, boot, a - b, parts={better: a, worse: b}))
    return results


# ------------------------------------------------------------------------------------------ figures, run folder


def uint8(image: torch.Tensor) -> np.ndarray:
    """A (3, H, W) lrfr image as (H, W, 3) uint8 (clipped)."""
    return ((image.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


def super_resolved(sr: torch.nn.Module | None, probes: ProbeHypotheses, index: int) -> torch.Tensor:
    """Item ``index`` of ``probes`` (a blurred LR probe) super-resolved by ``sr`` (None: as is), (3, H, W)."""
    image = probes[index]["image"][None]
    if sr is None:
        return image[0].clamp(-1, 1)
    with eval_mode(sr), torch.inference_mode():
        return sr(image.to(module_device(sr)))[0].clamp(-1, 1).cpu()


def table1_images(gallery: GalleryHypotheses, index: int = 0, seed: int = 0) -> dict[str, torch.Tensor]:
    """Table 1 on one gallery face: the face, then each degradation applied once (seeded)."""
    face = gallery.images[index][None]
    shown = {"original": face[0]}
    for name, function in DEGRADATIONS.items():
        shown[name] = function(face, torch.Generator().manual_seed(seed))[0]
    return shown


def chapter_run(results_root: str | Path, model: str, config: Mapping[str, Any], seed: int) -> RunFolder:
    """The chapter's run folder for one recognition model: ``grm-mitm-<model>-<hash of config>``."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:8]
    slug = "-".join("".join(c if c.isalnum() else " " for c in model).lower().split())
    return RunFolder.create(results_root, f"grm-mitm-{slug}-{digest}", dict(config), seed, exist_ok=True)


def save_image(run: RunFolder, relative: str, image: torch.Tensor) -> str:
    """Write a (3, H, W) lrfr image as a PNG in the run folder (atomically); return its path."""
    path = run.artifact_path(relative)
    with atomic_write(path) as temporary:
        Image.fromarray(uint8(image)).save(temporary, format="PNG")
    return str(path)


def save_bank(run: RunFolder, bank: Bank, probes: ProbeHypotheses, gallery: GalleryHypotheses,
              sr: Mapping[int, torch.nn.Module], sample: Sequence[int], shown_chains: int = 16) -> None:
    """The dashboard's view of one model's templates: the embedding set ``hypotheses``.

    Rows of split "probe": every probe x scale x blur level (``sigma``); rows of split "gallery": every mugshot
    x scale x RM size (``native_height`` is the RM height) x one of its first ``shown_chains`` hypotheses
    (``chain``). ``path`` is the original face; ``hypothesis_path`` the hypothesis image, written for the
    probes in ``sample`` and for their subjects' mugshots (at the first sampled probe's RM size); ``sr_path``
    (the dashboard's SR column) repeats it on probe rows.
    """
    chosen, columns = set(sample), ("split", "path", "scale", "sigma", "chain", "native_height", "hypothesis_path", "sr_path")
    rows: dict[str, list[Any]] = {column: [] for column in columns}
    vectors, labels = [], []

    def add(vector: np.ndarray, label: int, *values: Any) -> None:
        for column, value in zip(columns, values):
            rows[column].append(value)
        vectors.append(vector)
        labels.append(label)

    for k, templates in bank.probes.items():
        for p, record in enumerate(probes.records):
            for h, sigma in enumerate(probes.sigmas):
                item = p * len(probes.sigmas) + h
                path = save_image(run, f"hypotheses/probe_{p:05d}_x{k}_s{h:02d}.png", super_resolved(sr[k], probes, item)) if p in chosen else ""
                add(templates[p, h], record.label, "probe", str(record.path), k, float(sigma), "none", bank.keys[p][0], path, path)
    shown_labels = {probes.records[p].label for p in chosen}
    shown_key = bank.keys[min(chosen)] if chosen else None
    for (k, key), templates in bank.degraded.items():
        view = GalleryHypotheses(gallery.records, gallery.chains, (key[0] * k, key[1] * k), gallery.seed) if key == shown_key else None
        for g, record in enumerate(gallery.records):
            for c, chain in enumerate(gallery.chains[:shown_chains]):
                path = ""
                if view is not None and record.label in shown_labels:
                    path = save_image(run, f"hypotheses/gallery_{g:05d}_x{k}_c{c:04d}.png", view.image(g, c))
                add(templates[g, c], record.label, "gallery", str(record.path), k, 0.0, " > ".join(chain) or "none", key[0], path, "")
    run.save_embeddings("hypotheses", np.array(vectors), labels, {k: np.array(v) for k, v in rows.items()})


@dataclass(frozen=True)
class Outcome:
    """What the chapter shows for one recognition model: rows' hits, estimates and effects."""

    table2: dict[str, np.ndarray]
    table3: dict[str, np.ndarray]
    boot: Bootstrap
    values: dict[str, Estimate] = field(default_factory=dict)
    effects: dict[str, Estimate] = field(default_factory=dict)


def outcome(bank: Bank, scales: Sequence[int], resamples: int, seed: int) -> Outcome:
    """Tables 2 and 3 of one model's bank with intervals and the effects over the baseline."""
    table2, table3 = table2_hits(bank, scales), table3_hits(bank, scales) if len(scales) > 1 else {}
    boot = Bootstrap(bank.probe_labels, resamples=resamples, seed=seed)
    both = {**table2, **table3}
    return Outcome(table2, table3, boot, estimates(both, boot), paired_effects(table2, boot, BASELINE))

"""Multi-hypothesis matching of Grm et al. (2023), Sec. 3.4: correlation similarity (Eq. 3), template fusion
T_add (Eq. 4) and T_concat (Eq. 5), score fusion S_add and S_max, and their two-level combinations (Fig. 4).

Templates of one side are a ``(N, S, H, D)`` array: N images, S scales, H hypotheses per scale (SR blur
levels for a probe, degradation chains for a gallery image), D dimensions. A :class:`Fusion` names how
each side's ``S x H`` hypotheses are reduced:

* a **template fusion** before the similarity: ``T_add`` sums all of them (Eq. 4); ``T_concat`` sums each
  scale's and concatenates the scales (Eq. 5; both sides must use it, the dimensions must agree);
* a **score fusion** after it, over that side's axis of the similarity matrix: ``S_add`` (the sum rule of
  Kittler et al.) or ``S_max`` (the best pair of hypotheses).

Fig. 4(c): with score fusion on both sides, the matrix's rows (one per probe hypothesis) are reduced
first over the gallery hypotheses, then over the probe hypotheses (Sec. 4.2: "we first apply S_max on the
similarity matrix in order to obtain the most similar gallery hypotheses, then S_add").

Choice (Eq. 3): ``t-bar`` is the mean of the template's own entries, i.e. Pearson correlation of the two
vectors (SciPy's correlation distance is one minus it); the paper's "mean probe and gallery templates"
could also be read as a mean over the set, which would make a score depend on the other probes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

TEMPLATE_FUSIONS = ("T_add", "T_concat")
SCORE_FUSIONS = ("S_add", "S_max")
FUSIONS = TEMPLATE_FUSIONS + SCORE_FUSIONS


def centred_unit(templates: Tensor) -> Tensor:
    """Each template minus the mean of its entries, divided by its norm (Eq. 3's normalisation)."""
    centred = templates - templates.mean(dim=-1, keepdim=True)
    return centred / centred.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def correlation(probe: Tensor, gallery: Tensor) -> Tensor:
    """Eq. 3 between every row of ``probe`` (..., P, D) and of ``gallery`` (..., G, D): (..., P, G) in [-1, 1]."""
    return centred_unit(probe) @ centred_unit(gallery).transpose(-1, -2)


@dataclass(frozen=True)
class Fusion:
    """How the probe side and the gallery side reduce their hypotheses (each one of :data:`FUSIONS`)."""

    probe: str = "S_max"
    gallery: str = "S_max"

    def __post_init__(self) -> None:
        for side in ("probe", "gallery"):
            if getattr(self, side) not in FUSIONS:
                raise ValueError(f"Fusion.{side} {getattr(self, side)!r} is not valid; expected one of {FUSIONS}")
        if "T_concat" in (self.probe, self.gallery) and self.probe != self.gallery:
            raise ValueError("T_concat must be applied to both sides (the template dimensions must agree, Sec. 3.4)")

    @property
    def label(self) -> str:
        return f"probe {self.probe}, gallery {self.gallery}"


def fuse_templates(templates: Tensor, fusion: str) -> Tensor:
    """``(N, S, H, D)`` -> ``(N, K, D')``: one template (T_add: D; T_concat: S D) or all S H hypotheses as is."""
    n, scales, hypotheses, dims = templates.shape
    if fusion == "T_add":
        return templates.sum(dim=(1, 2))[:, None]
    if fusion == "T_concat":
        return templates.sum(dim=2).reshape(n, 1, scales * dims)
    return templates.reshape(n, scales * hypotheses, dims)


def _reduce(scores: Tensor, fusion: str, dim: int) -> Tensor:
    return scores.amax(dim=dim) if fusion == "S_max" else scores.sum(dim=dim)


BLOCK_SCORES = 2**26  # scores held at once by fused_scores (256 MB of float32)


def fused_scores(probe: np.ndarray | Tensor, gallery: np.ndarray | Tensor, fusion: Fusion, chunk: int | None = None) -> np.ndarray:
    """The ``(P, G)`` similarity of every probe with every gallery image under ``fusion``.

    ``probe`` (P, S, H_p, D) and ``gallery`` (G, S', H_g, D) templates; probes are processed ``chunk`` at a
    time (memory: chunk x G x S H_p x S' H_g scores; default: as many as fit in :data:`BLOCK_SCORES`).
    Template fusions are applied once per side.
    """
    probe_t, gallery_t = torch.as_tensor(probe, dtype=torch.float32), torch.as_tensor(gallery, dtype=torch.float32)
    for name, t in (("probe", probe_t), ("gallery", gallery_t)):
        if t.ndim != 4:
            raise ValueError(f"{name} templates have shape {tuple(t.shape)}; expected (N, scales, hypotheses, D)")
    if fusion.probe == "T_concat" and probe_t.shape[1] != gallery_t.shape[1]:
        raise ValueError(f"T_concat needs the same scales on both sides, got {probe_t.shape[1]} and {gallery_t.shape[1]}")
    probe_f = centred_unit(fuse_templates(probe_t, fusion.probe))  # (P, Kp, D')
    gallery_f = centred_unit(fuse_templates(gallery_t, fusion.gallery))  # (G, Kg, D')
    chunk = chunk or max(1, BLOCK_SCORES // max(1, len(gallery_f) * probe_f.shape[1] * gallery_f.shape[1]))
    out = []
    for start in range(0, len(probe_f), chunk):
        block = torch.einsum("pid,gjd->pgij", probe_f[start:start + chunk], gallery_f)  # (p, G, Kp, Kg)
        out.append(_reduce(_reduce(block, fusion.gallery, dim=3), fusion.probe, dim=2))
    return torch.cat(out).numpy()


def best_hypothesis(probe: np.ndarray | Tensor, gallery: np.ndarray | Tensor) -> np.ndarray:
    """Sec. 3.3: for each probe (P, H, D), the index of the hypothesis whose best similarity to any gallery
    template (G, D) is highest. Its rank-1 decision equals S_max over the probe's hypotheses."""
    scores = correlation(torch.as_tensor(probe, dtype=torch.float32), torch.as_tensor(gallery, dtype=torch.float32))
    return scores.amax(dim=-1).argmax(dim=-1).numpy()


def first_ranks(scores: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray) -> np.ndarray:
    """1-based rank of each probe's mate in its row of ``scores`` (P, G); ties are broken against the mate
    (a gallery image with an equal score counts as ranked above it). Every probe must have exactly one mate."""
    probe_labels, gallery_labels = np.asarray(probe_labels), np.asarray(gallery_labels)
    mates = probe_labels[:, None] == gallery_labels[None, :]
    if not np.all(mates.sum(axis=1) == 1):
        raise ValueError("first_ranks: every probe needs exactly one mate in the gallery (a closed-set gallery)")
    mate_scores = scores[mates]
    return 1 + ((scores >= mate_scores[:, None]) & ~mates).sum(axis=1)

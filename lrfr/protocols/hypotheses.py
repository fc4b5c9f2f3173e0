"""Hypothesis images and their templates for Grm et al. (2023): multi-hypothesis SR of probes (Sec. 3.3)
and degraded, resolution-matched gallery hypotheses (Sec. 3.2), streamed through a DataLoader and
embedded once.

* :class:`ProbeHypotheses`: item ``(probe p, blur level k)`` is the LR probe at its own size blurred
  by a Gaussian of ``sigmas[k]`` (Sec. 3.3: 16 levels, sigma = 0 through 1, :func:`paper_sigmas`).
  Batches group probes of equal size (:func:`size_batches`) so that an SR network (a fixed factor,
  :class:`lrfr.models.sr.EDSR`) upsamples a whole batch; :func:`probe_templates` then embeds the SR
  images (or the LR images, for the baseline without SR) with any embedder, which resizes them to its
  input.
* :class:`GalleryHypotheses`: item ``(gallery g, chain c)`` is the HR gallery image degraded by chain c
  (Eq. 1; the empty chain is the undegraded image) and resized to the RM target (the probe hypothesis
  size), seeded per item, so a hypothesis is the same in every run.

The arrays come back as ``(N, H, D)``: N images, H hypotheses, D dimensions; the caller stacks scales into
the ``(N, S, H, D)`` of :mod:`lrfr.protocols.fusion`. Templates are computed once per (image, hypothesis):
a probe x gallery comparison over m x |s| and n x |s| hypotheses re-uses them (no recomputation per pair).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from lrfr.data.base import FaceRecord, cropped, read_image, to_tensor
from lrfr.data.degrade import resize
from lrfr.data.gallery_degradations import degrade, filter2d, gaussian_kernel
from lrfr.models.embedder import Embedder, as_embedder
from lrfr.models.modes import eval_mode

PAPER_HYPOTHESES = 16  # Sec. 3.3: "we generate 16 versions of the input images"


def paper_sigmas(count: int = PAPER_HYPOTHESES) -> tuple[float, ...]:
    """``count`` blur levels evenly from sigma = 0 to sigma = 1 (Sec. 3.3)."""
    return tuple(float(s) for s in np.linspace(0.0, 1.0, count))


def blur(image: Tensor, sigma: float) -> Tensor:
    """``image`` (3, h, w) blurred by a Gaussian of ``sigma`` (window 2 ceil(3 sigma) + 1; sigma 0: unchanged)."""
    return image if sigma == 0 else filter2d(image[None], gaussian_kernel(sigma))[0]


def read_face(record: FaceRecord) -> Tensor:
    """The record's image (cut to its crop box) at its own size, as a float (3, h, w) tensor in [-1, 1]."""
    return to_tensor(cropped(read_image(record.path), record))


class ProbeHypotheses(Dataset):
    """``(probe, sigma)`` items: ``{"image": blurred LR probe, "label", "probe", "sigma", "index"}``, probe-major."""

    def __init__(self, records: Sequence[FaceRecord], sigmas: Sequence[float]) -> None:
        if not records or not sigmas or min(sigmas) < 0:
            raise ValueError(f"ProbeHypotheses needs probes and sigmas >= 0, got {len(records)} probes, sigmas {list(sigmas)}")
        self.records, self.sigmas = list(records), [float(s) for s in sigmas]
        self.images = [read_face(r) for r in self.records]

    def __len__(self) -> int:
        return len(self.records) * len(self.sigmas)

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """The (h, w) of every item."""
        return [tuple(image.shape[-2:]) for image in self.images for _ in self.sigmas]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        probe, level = divmod(index, len(self.sigmas))
        return {"image": blur(self.images[probe], self.sigmas[level]), "label": torch.tensor(self.records[probe].label),
                "probe": torch.tensor(probe), "sigma": torch.tensor(level), "index": torch.tensor(index)}


class GalleryHypotheses(Dataset):
    """``(gallery, chain)`` items: the HR image degraded by the chain (Eq. 1) and resized to ``target``
    (RM; None keeps the degraded size). Item ``i`` is seeded by ``(seed, gallery, chain index)``."""

    def __init__(self, records: Sequence[FaceRecord], chains: Sequence[tuple[str, ...]],
                 target: tuple[int, int] | None = None, seed: int = 0) -> None:
        if not records or not chains:
            raise ValueError(f"GalleryHypotheses needs gallery images and chains, got {len(records)} and {len(chains)}")
        self.records, self.chains, self.target, self.seed = list(records), [tuple(c) for c in chains], target, seed
        self.images = [read_face(r) for r in self.records]

    def __len__(self) -> int:
        return len(self.records) * len(self.chains)

    def image(self, gallery: int, chain: int) -> Tensor:
        """The degraded, resolution-matched hypothesis (3, H, W)."""
        generator = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, gallery, chain]).generate_state(1)[0]))
        degraded = degrade(self.images[gallery][None], self.chains[chain], generator)[0]
        return degraded if self.target is None else resize(degraded, self.target)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        gallery, chain = divmod(index, len(self.chains))
        return {"image": self.image(gallery, chain), "label": torch.tensor(self.records[gallery].label),
                "index": torch.tensor(index)}


def size_batches(sizes: Sequence[tuple[int, int]], batch_size: int) -> list[list[int]]:
    """Indices grouped by equal image size, each group cut into batches of at most ``batch_size``."""
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, size in enumerate(sizes):
        groups[tuple(size)].append(index)
    return [indices[i:i + batch_size] for _, indices in sorted(groups.items()) for i in range(0, len(indices), batch_size)]


def _collate(items: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


def _embed_batches(embedder: Embedder, loader: DataLoader, sr: nn.Module | None, desc: str, progress: bool) -> np.ndarray:
    """Unit embeddings of every item of ``loader``, in item order (batches carry "image" and "index"); the
    images are super-resolved by ``sr`` first (on the embedder's device) when given."""
    indices, units = [], []
    with eval_mode(*([sr] if sr is not None else [])), torch.inference_mode():
        for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress):
            images = batch["image"].to(embedder.device)
            if sr is not None:
                images = sr(images).clamp(-1, 1)
            units.append(embedder.embed(images)[0].cpu().numpy())
            indices.append(batch["index"].numpy())
    order = np.concatenate(indices)
    out = np.empty((len(order), units[0].shape[1]), dtype=np.float32)
    out[order] = np.concatenate(units)
    return out


def probe_templates(model: Embedder | nn.Module, probes: ProbeHypotheses, sr: nn.Module | None = None, *,
                    batch_size: int = 128, num_workers: int = 0, progress: bool = True, desc: str = "probe hypotheses") -> np.ndarray:
    """``(P, len(sigmas), D)`` unit templates of every probe hypothesis: blurred, super-resolved by ``sr``
    (None: the LR image as is; the embedder resizes it), embedded."""
    loader = DataLoader(probes, batch_sampler=size_batches(probes.sizes, batch_size), collate_fn=_collate, num_workers=num_workers)
    flat = _embed_batches(as_embedder(model), loader, sr, desc, progress)
    return flat.reshape(len(probes.records), len(probes.sigmas), -1)


def gallery_templates(model: Embedder | nn.Module, gallery: GalleryHypotheses, *, batch_size: int = 128,
                      num_workers: int = 0, progress: bool = True, desc: str = "gallery hypotheses") -> np.ndarray:
    """``(G, len(chains), D)`` unit templates of every degraded, resolution-matched gallery hypothesis."""
    loader = DataLoader(gallery, batch_size=batch_size, collate_fn=_collate, num_workers=num_workers)
    flat = _embed_batches(as_embedder(model), loader, None, desc, progress)
    return flat.reshape(len(gallery.records), len(gallery.chains), -1)

"""Face image quality scores the recognizability index (RI) is compared with (Chai et al. 2023, Fig. 6-7).

Higher = better quality for every score here:
- MagFace (Meng et al. 2021): the L2 norm of the unnormalised embedding.
- ERS (Deng et al. 2021, "Harnessing unrecognizable faces"): the cosine distance to the UI
  center, 1 - cos(v, c_UI), where c_UI = normalise(mean of the normalised UI embeddings) (the
  center of Chai et al.'s Eq. 2, whose d^UI this is). Chosen because it is the distance
  the UI-center argument is about, in [0, 2], and needs no training.
- CR-FIQA (Boutros et al. 2023): certainty ratio CR = CCS / (NNCCS + 1 + eps), CCS = cos to the
  own class centre, NNCCS = max cos to the other class centres, eps = 1e-9.
- SER-FIQ (Terhörst et al. 2020): m stochastic forward passes with dropout active; with the
  normalised embeddings x_1..x_m, q = 2 * sigmoid(-(2 / m^2) * sum_{i<j} ||x_i - x_j||) (their
  Eq. 2; the factor is the mean over all m^2 ordered pairs, self-pairs included, i.e. (m - 1) / m
  times the mean over distinct pairs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from lrfr.models.modes import eval_mode, module_device
from lrfr.protocols.embeddings import image_batches
from lrfr.protocols.search import as_embeddings, as_labels, normalised


def embedding_norm(features: np.ndarray | Tensor) -> np.ndarray:
    """(N,) MagFace quality: L2 norm of each unnormalised embedding."""
    return torch.linalg.vector_norm(as_embeddings(features, "features"), dim=1).numpy()


def ui_center(ui_embeddings: np.ndarray | Tensor) -> np.ndarray:
    """(D,) UI center: the re-normalised mean of the L2-normalised UI embeddings."""
    mean = normalised(as_embeddings(ui_embeddings, "ui_embeddings"), "ui_embeddings").mean(0, keepdim=True)
    return normalised(mean, "UI mean (the embeddings cancel out)")[0].numpy()


def ers_quality(embeddings: np.ndarray | Tensor, center: np.ndarray | Tensor) -> np.ndarray:
    """(N,) ERS quality: 1 - cos(v, center), the cosine distance of each embedding to the UI center."""
    rows = as_embeddings(embeddings, "embeddings")
    center = as_embeddings(torch.as_tensor(center).reshape(1, -1), "center")
    if center.shape[1] != rows.shape[1]:
        raise ValueError(f"center has dimension {center.shape[1]}; expected {rows.shape[1]} like the embeddings")
    return (1 - normalised(rows, "embeddings") @ normalised(center, "center")[0]).numpy()


def certainty_ratio(
    embeddings: np.ndarray | Tensor,
    labels: np.ndarray | Sequence[int],
    prototypes: np.ndarray | Tensor,
    prototype_labels: np.ndarray | Sequence[int],
    eps: float = 1e-9,
) -> np.ndarray:
    """(N,) CR-FIQA certainty ratio CCS / (NNCCS + 1 + eps) against class ``prototypes`` (C, D).

    ``prototype_labels``: (C,) distinct labels of the prototypes (e.g. from
    :func:`lrfr.protocols.open_set.identity_templates`); every label in ``labels`` needs one.
    """
    rows, centres = as_embeddings(embeddings, "embeddings"), as_embeddings(prototypes, "prototypes")
    labels = as_labels(labels, rows.shape[0], "labels")
    prototype_labels = as_labels(prototype_labels, centres.shape[0], "prototype_labels")
    if centres.shape[0] < 2 or centres.shape[1] != rows.shape[1]:
        raise ValueError(f"prototypes have shape {tuple(centres.shape)}; expected (C >= 2, {rows.shape[1]})")
    order = np.argsort(prototype_labels)
    if (np.diff(prototype_labels[order]) == 0).any():
        raise ValueError("prototype_labels has a repeated label; expected one prototype per class")
    position = order[np.minimum(np.searchsorted(prototype_labels[order], labels), len(order) - 1)]
    if (prototype_labels[position] != labels).any():
        missing = np.unique(labels[prototype_labels[position] != labels])[:5]
        raise ValueError(f"labels {missing.tolist()} have no prototype; expected a prototype for every label")
    cosines = normalised(rows, "embeddings") @ normalised(centres, "prototypes").T
    own = torch.as_tensor(position)[:, None]
    ccs = cosines.gather(1, own)[:, 0]
    nnccs = cosines.scatter(1, own, -torch.inf).max(1).values
    return (ccs / (nnccs + 1 + eps)).numpy()


def ser_fiq(
    model: nn.Module,
    images: Dataset | Tensor,
    dropout: nn.Module | Sequence[nn.Module],
    *,
    passes: int = 100,
    batch_size: int = 64,
    num_workers: int = 0,
    seed: int = 0,
) -> np.ndarray:
    """(N,) SER-FIQ quality of ``images`` (a Dataset of images at the model's input, or a (N, C, H, W)
    tensor; streamed in batches by :func:`~lrfr.protocols.embeddings.image_batches`): ``passes`` forward
    passes with only the ``dropout`` submodule(s) in train mode (the rest in eval), scored as in the
    module docstring.

    Seeded (the global RNG is left untouched); every module's mode is restored afterwards.
    """
    stochastic = [dropout] if isinstance(dropout, nn.Module) else list(dropout)
    members = set(map(id, model.modules()))
    if not stochastic or any(id(module) not in members for module in stochastic):
        raise ValueError("dropout must be one or more submodules of model (the layers kept stochastic)")
    if not isinstance(passes, int) or passes < 2:
        raise ValueError(f"passes {passes!r} is not valid; expected an int >= 2")
    device = module_device(model)
    batches = image_batches(images, batch_size=batch_size, num_workers=num_workers, device=device)
    with eval_mode(model, stochastic=stochastic), torch.no_grad(), \
            torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        qualities = [_ser_fiq_batch(model, batch, passes).cpu() for batch, _ in batches]
    return torch.cat(qualities).numpy()


def _ser_fiq_batch(model: nn.Module, images: Tensor, passes: int) -> Tensor:
    """(B,) 2 * sigmoid(-(2 / m^2) * sum_{i<j} ||x_i - x_j||) per image over m = ``passes`` passes."""
    stacked = torch.stack([normalised(model(images).float(), "model output") for _ in range(passes)], 1)
    distances = torch.cdist(stacked, stacked)  # (B, m, m), symmetric, zero diagonal
    return 2 * torch.sigmoid(-(2 / passes**2) * distances.sum((1, 2)) / 2)

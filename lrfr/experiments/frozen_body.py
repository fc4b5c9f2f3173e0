"""Many models fine-tuned from one backbone with a frozen prefix: each face's prefix maps computed once.

The book's quick mode trains Ling et al.'s ablation models (chapter 3) as tails of the shared HR
pre-training (:mod:`lrfr.models.tail`): the prefix is frozen, so the map it gives a face at a size is
the same for every model and every step. :func:`features_file` computes the maps of a training set at
the HR size and each LR size once and writes them (the ``feature_pairs`` dataset reads them, cached by
what they are made of); :class:`FeatureBank` does the same in memory for test faces and embeds them with
any tail. Both read the images through a DataLoader.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from lrfr.data import DATASETS
from lrfr.data.base import FaceDataset, FaceRecord
from lrfr.data.feature_pairs import LABELS_KEY, feature_key
from lrfr.data.resolution import down_up
from lrfr.experiments.workflow import data_version
from lrfr.io import save_tensors_atomic
from lrfr.models.modes import eval_mode


@torch.no_grad()
def prefix_features(prefix: nn.Module, dataset: Dataset, sizes: Sequence[int | None], batch_size: int = 128,
                    desc: str = "prefix maps") -> tuple[dict[int | None, Tensor], Tensor]:
    """``({size: (N, C, h, w) maps}, (N,) labels)`` of ``dataset``'s images (each bicubic down-sampled to
    ``size`` px and back up, :func:`lrfr.data.resolution.down_up`; None: as they are) through ``prefix``."""
    maps: dict[int | None, list[Tensor]] = {size: [] for size in sizes}
    labels = []
    with eval_mode(prefix):
        for batch in tqdm(DataLoader(dataset, batch_size=batch_size), desc=desc, leave=False):
            for size in sizes:
                maps[size].append(prefix(batch["image"] if size is None else down_up(batch["image"], size)))
            labels.append(batch["label"])
    return {size: torch.cat(parts) for size, parts in maps.items()}, torch.cat(labels)


def features_file(prefix: nn.Module, identity: dict[str, Any], data: dict[str, Any], sizes: Sequence[int],
                  results_root: str | Path, name: str = "features") -> Path:
    """The features file of the training set that ``DATASETS.build(**data)`` reads (``data["dataset"]`` and
    its arguments), at the HR size and each of ``sizes``, through ``prefix``; written on first use to
    ``<results_root>/<name>-<hash>/features.safetensors``, the hash over ``identity`` (what the prefix
    is: e.g. its run and cut), ``data``, the sizes and the synthetic data's version."""
    record = {"prefix": identity, "data": data, "sizes": sorted(int(s) for s in sizes),
              "data_version": data_version(data["root"]) if "root" in data else None}
    digest = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:8]
    path = Path(results_root) / f"{name}-{digest}" / "features.safetensors"
    if path.is_file():
        return path
    kwargs = dict(data)
    dataset = DATASETS.build(kwargs.pop("dataset"), **kwargs)
    maps, labels = prefix_features(prefix, dataset, [None, *record["sizes"]], desc=f"prefix maps of {path.parent.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / "record.json").write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
    save_tensors_atomic(path, {**{feature_key(size): value for size, value in maps.items()}, LABELS_KEY: labels})
    return path


def _face(record: FaceRecord) -> tuple[str, tuple | None]:
    """What identifies a face image: its file and crop box (:func:`lrfr.data.base.cropped`)."""
    crop = record.metadata.get("crop")
    return str(record.path), None if crop is None else tuple(crop)


class FeatureBank:
    """Prefix maps of test faces at each size, computed once per face and size, embedded by any tail.

    ``add(records, sizes)`` reads the faces not yet held once (at ``input_size``) and keeps their maps at
    every size (None: the image as stored); ``embed(tail, records, size)`` gives their (N, D) unit
    embeddings, adding the faces it does not hold yet (add a set at all its sizes first to read it once)."""

    def __init__(self, prefix: nn.Module, input_size: int, batch_size: int = 128) -> None:
        self.prefix, self.input_size, self.batch_size = prefix, input_size, batch_size
        self.maps: dict[tuple[tuple[str, tuple | None], int | None], Tensor] = {}

    def add(self, records: Sequence[FaceRecord], sizes: Sequence[int | None] = (None,), desc: str = "faces") -> None:
        sizes = list(dict.fromkeys(sizes))
        todo = [r for r in dict((_face(r), r) for r in records).values() if any((_face(r), s) not in self.maps for s in sizes)]
        if todo:
            maps, _ = prefix_features(self.prefix, FaceDataset(todo, self.input_size), sizes, self.batch_size,
                                      desc=f"prefix maps of {desc}")
            for size, values in maps.items():
                self.maps.update({(_face(r), size): value for r, value in zip(todo, values)})

    @torch.no_grad()
    def embed(self, tail: nn.Module, records: Sequence[FaceRecord], size: int | None = None) -> np.ndarray:
        self.add(records, [size])
        maps = torch.stack([self.maps[(_face(r), size)] for r in records])
        with eval_mode(tail):
            parts = [F.normalize(tail(chunk), dim=1) for chunk in maps.split(1024)]
        return torch.cat(parts).numpy()

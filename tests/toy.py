"""A separable toy problem for trainer tests: one random template per class plus noise.

Items are dicts with ``image`` (the 32x32 template + noise), ``hr`` (the same image), ``lr`` (its
bicubic 8x8 version brought back to 32x32) and ``label``. Deterministic per (seed, index).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset


class ToyFaces(Dataset):
    def __init__(self, num_classes: int = 4, per_class: int = 16, size: int = 32, noise: float = 0.5, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.num_classes = num_classes
        self.templates = torch.randn(num_classes, 3, size, size, generator=generator)
        self.labels = torch.arange(num_classes).repeat_interleave(per_class)
        self.noise = noise * torch.randn(len(self.labels), 3, size, size, generator=generator)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        label = self.labels[index]
        image = self.templates[label] + self.noise[index]
        small = F.interpolate(image[None], size=8, mode="bicubic", antialias=True, align_corners=False)
        low = F.interpolate(small, size=image.shape[-1], mode="bicubic", align_corners=False)[0]
        return {"image": image, "hr": image, "lr": low, "label": label}


def make_toy(**kwargs) -> ToyFaces:
    """Factory named in experiment configs as ``"tests.toy:make_toy"``."""
    return ToyFaces(**kwargs)

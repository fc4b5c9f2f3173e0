"""One interface for every face-recognition model: an :class:`Embedder` with its :class:`InputSpec`.

A model trained here, a converted public checkpoint (insightface, AdaFace) or a port of dlib's
descriptor each expect their own input: size, channel order, pixel normalisation, and faces aligned to
a particular template. An Embedder carries that as its :class:`InputSpec` and applies it itself, so
every caller hands it the same thing, **lrfr images**: float ``(B, 3, H, W)`` tensors, RGB, in
[-1, 1] (pixel / 127.5 - 1), what lrfr datasets yield, at any size.

``embed(images) -> (embeddings, norms)``: the spec's preprocessing (bicubic resize to ``spec.size``
with :func:`lrfr.data.degrade.resize`, channel order, normalisation), the network (:meth:`Embedder.forward`
on prepared inputs, unnormalised ``(B, D)``), optionally flip fusion (f(x) + f(x mirrored), the
AdaFace/insightface test-time convention), then L2 normalisation; ``norms`` are the norms before it
(MagFace's quality; with flip fusion the norm of the sum). It runs in eval mode under
``torch.inference_mode`` on the model's device, every module's mode restored afterwards.

To add a model: subclass :class:`Embedder`, set ``spec`` and implement ``forward``. A trained lrfr
backbone is one through :class:`BackboneEmbedder`; :func:`as_embedder` wraps any ``nn.Module`` mapping
images to ``(B, D)``. Streaming a whole dataset through an embedder is
:func:`lrfr.protocols.embeddings.extract_embeddings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lrfr.data.degrade import resize
from lrfr.models.base import as_size
from lrfr.models.modes import eval_mode, module_device

ChannelOrder = Literal["RGB", "BGR"]
LRFR_PIXELS = (127.5, 127.5, 127.5)
"""Mean and std that map 0-255 pixels to lrfr's [-1, 1]: a spec with both needs no normalisation."""


@dataclass(frozen=True)
class InputSpec:
    """What a model expects as input.

    ``size``: (height, width) in pixels, or None for a model that takes any size (nothing is resized).
    ``channels``: "RGB" or "BGR" (e.g. insightface models trained on OpenCV-read images).
    ``mean``, ``std``: per input channel (in the model's channel order), on 0-255 pixel values: the model
    sees (pixel - mean) / std. lrfr's own models use 127.5 / 127.5, i.e. [-1, 1].
    ``alignment``: the name of the alignment template the model was trained on (e.g. "arcface" for
    :data:`lrfr.data.align.ARCFACE_TEMPLATE`), or None when it was trained on the data as given.
    """

    size: tuple[int, int] | None
    channels: ChannelOrder = "RGB"
    mean: tuple[float, float, float] = LRFR_PIXELS
    std: tuple[float, float, float] = LRFR_PIXELS
    alignment: str | None = None

    def __post_init__(self) -> None:
        if self.size is not None:
            object.__setattr__(self, "size", as_size(self.size))
        if self.channels not in ("RGB", "BGR"):
            raise ValueError(f"channels {self.channels!r} is not valid; expected 'RGB' or 'BGR'")
        for name in ("mean", "std"):
            values = tuple(float(v) for v in getattr(self, name))
            if len(values) != 3 or (name == "std" and min(values) <= 0):
                raise ValueError(f"{name} {getattr(self, name)!r} is not valid; expected 3 values (std > 0)")
            object.__setattr__(self, name, values)

    def prepare(self, images: Tensor) -> Tensor:
        """lrfr images ``(B, 3, H, W)`` (RGB, [-1, 1]) -> the model's input ``(B, 3, *size)``."""
        if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"images are {got}; expected lrfr images, a float (B, 3, H, W) tensor in [-1, 1]")
        if self.size is not None:
            images = resize(images, self.size)
        if self.channels == "BGR":
            images = images.flip(1)
        if self.mean == LRFR_PIXELS and self.std == LRFR_PIXELS:
            return images
        mean = torch.tensor(self.mean, device=images.device, dtype=images.dtype)[:, None, None]
        std = torch.tensor(self.std, device=images.device, dtype=images.dtype)[:, None, None]
        return ((images + 1) * 127.5 - mean) / std


class Embedder(nn.Module):
    """A face-recognition model behind one call: ``embed(lrfr images) -> (unit embeddings, norms)``.

    Subclasses set ``spec`` and implement :meth:`forward` (prepared inputs -> unnormalised ``(B, D)``);
    ``flip_fusion`` is the model's own test-time convention, which :meth:`embed` can override.
    """

    spec: InputSpec

    def __init__(self, spec: InputSpec, flip_fusion: bool = False) -> None:
        super().__init__()
        self.spec, self.flip_fusion = spec, bool(flip_fusion)

    def forward(self, inputs: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Unnormalised ``(B, D)`` embeddings of inputs already prepared by ``spec``."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        """Where the model's first parameter (or buffer) is; CPU for a model without any."""
        return module_device(self)

    def embed(self, images: Tensor, flip_fusion: bool | None = None) -> tuple[Tensor, Tensor]:
        """``(B, D)`` float32 unit embeddings and ``(B,)`` norms of lrfr images (on the model's device).

        ``flip_fusion`` None uses the model's own setting.
        """
        fuse = self.flip_fusion if flip_fusion is None else flip_fusion
        with eval_mode(self), torch.inference_mode():
            inputs = self.spec.prepare(images.to(self.device, non_blocking=True))
            embedded = self._forward_checked(inputs)
            if fuse:
                embedded = embedded + self._forward_checked(inputs.flip(-1))
            return F.normalize(embedded, dim=1), torch.linalg.vector_norm(embedded, dim=1)

    def _forward_checked(self, inputs: Tensor) -> Tensor:
        output = self(inputs)
        if not isinstance(output, Tensor) or output.ndim != 2 or output.shape[0] != inputs.shape[0]:
            got = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
            count = inputs.shape[0]
            raise ValueError(f"model output is {got} for a batch of {count} images; expected a ({count}, D) tensor")
        return output.float()


class BackboneEmbedder(Embedder):
    """A model trained here (an lrfr :class:`~lrfr.models.base.Backbone`, or any ``nn.Module`` mapping
    lrfr images to ``(B, D)``) as an Embedder: lrfr's [-1, 1] RGB input at the model's ``input_size``
    (no resizing for a model without one). A converted public checkpoint passes its publisher's
    ``spec`` instead (:mod:`lrfr.models.pretrained.zoo`)."""

    def __init__(
        self, model: nn.Module, flip_fusion: bool = False, alignment: str | None = None, spec: InputSpec | None = None
    ) -> None:
        if spec is not None and alignment is not None:
            raise ValueError("give either spec or alignment (the spec holds its alignment)")
        spec = spec or InputSpec(size=getattr(model, "input_size", None), alignment=alignment)
        super().__init__(spec, flip_fusion)
        self.model = model

    def forward(self, inputs: Tensor) -> Tensor:
        return self.model(inputs)


def as_embedder(model: Embedder | nn.Module) -> Embedder:
    """``model`` itself if it is an :class:`Embedder`, else wrapped by :class:`BackboneEmbedder`."""
    if isinstance(model, Embedder):
        return model
    if not isinstance(model, nn.Module):
        raise TypeError(f"model has type {type(model).__name__}; expected an Embedder or a torch nn.Module")
    return BackboneEmbedder(model)

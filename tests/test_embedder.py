"""The embedder interface (lrfr.models.embedder): input specs applied by the model, flip fusion, and a
trained backbone behind it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from lrfr.data.degrade import resize
from lrfr.models import build_backbone
from lrfr.models.embedder import BackboneEmbedder, Embedder, InputSpec, as_embedder
from lrfr.protocols.embeddings import extract_embeddings


class Recorder(Embedder):
    """Returns the mean of each prepared input channel, and records what it was given."""

    def __init__(self, spec: InputSpec, flip_fusion: bool = False) -> None:
        super().__init__(spec, flip_fusion)
        self.seen: list[Tensor] = []
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, inputs: Tensor) -> Tensor:
        self.seen.append(inputs.clone())
        return inputs.mean(dim=(2, 3)) * self.scale


def test_spec_resizes_reorders_and_normalises_as_documented() -> None:
    images = torch.zeros(2, 3, 20, 20)
    images[:, 0], images[:, 1], images[:, 2] = -1.0, 0.0, 1.0  # pixels 0, 127.5, 255 in R, G, B
    spec = InputSpec(size=(8, 8), channels="BGR", mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 5.0))
    model = Recorder(spec)
    embeddings, norms = model.embed(images)
    (prepared,) = model.seen
    assert prepared.shape == (2, 3, 8, 8)
    # BGR order: channel 0 is blue (255), then green (127.5), then red (0); then (pixel - mean) / std
    expected = torch.tensor([(255 - 10) / 2, (127.5 - 20) / 4, (0 - 30) / 5])
    torch.testing.assert_close(prepared[0, :, 3, 3], expected)
    torch.testing.assert_close(norms, torch.full((2,), float(expected.norm())))
    torch.testing.assert_close(embeddings[0], expected / expected.norm())


def test_lrfr_spec_is_the_identity_at_the_model_size() -> None:
    images = torch.rand(3, 3, 8, 8) * 2 - 1
    model = Recorder(InputSpec(size=8))
    model.embed(images)
    assert torch.equal(model.seen[0], images)
    small = torch.rand(1, 3, 20, 20) * 2 - 1
    model.embed(small)
    assert torch.equal(model.seen[1], resize(small, 8))


def test_flip_fusion_is_the_models_default_and_can_be_overridden() -> None:
    images = torch.zeros(1, 3, 4, 4)
    images[..., :2] = 1.0  # left half bright: the flip is another image
    fused = Recorder(InputSpec(size=None), flip_fusion=True)
    fused.embed(images)
    assert len(fused.seen) == 2 and torch.equal(fused.seen[1], images.flip(-1))
    fused.embed(images, flip_fusion=False)
    assert len(fused.seen) == 3


def test_a_trained_backbone_is_an_embedder_with_its_input_size() -> None:
    backbone = build_backbone("quick", input_size=32).train()
    embedder = as_embedder(backbone)
    assert isinstance(embedder, BackboneEmbedder) and embedder.spec == InputSpec(size=(32, 32))
    assert as_embedder(embedder) is embedder
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    embeddings, norms = embedder.embed(images, flip_fusion=True)
    with torch.no_grad():
        raw = backbone.eval()(images) + backbone(images.flip(-1))
    backbone.train()
    torch.testing.assert_close(norms, raw.norm(dim=1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(embeddings, raw / raw.norm(dim=1, keepdim=True), rtol=1e-5, atol=1e-5)
    assert backbone.training  # the mode is restored
    extracted = extract_embeddings(backbone, images, flip_fusion=True, progress=False)
    np.testing.assert_allclose(extracted.embeddings, embeddings.numpy(), atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"size": 0}, "input_size must be a positive int"),
    ({"size": 8, "channels": "RGBA"}, "channels 'RGBA' is not valid"),
    ({"size": 8, "std": (1.0, 0.0, 1.0)}, "std .* is not valid"),
    ({"size": 8, "mean": (1.0, 2.0)}, "mean .* is not valid"),
])
def test_bad_specs_are_rejected(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        InputSpec(**kwargs)


def test_bad_images_and_models_are_named() -> None:
    with pytest.raises(ValueError, match=r"expected lrfr images, a float \(B, 3, H, W\) tensor"):
        Recorder(InputSpec(size=8)).embed(torch.zeros(2, 1, 8, 8))
    with pytest.raises(TypeError, match="expected an Embedder or a torch nn.Module"):
        as_embedder(lambda images: images)  # type: ignore[arg-type]

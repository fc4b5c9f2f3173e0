"""Embedding extraction (lrfr.protocols.embeddings) against a hand-made model with known outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from lrfr.protocols import ExtractedEmbeddings, extract_embeddings


class HalvesModel(nn.Module):
    """f(x) = (l, 2r, 1) where l, r are the means of the image's left and right halves.

    Mirroring the image swaps l and r, so f(x) + f(flip(x)) = (l + r, 2l + 2r, 2).
    It records, per call, its training flag and whether inference mode was on.
    """

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([1.0, 2.0]))
        self.inner = nn.Dropout(0.5)
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, images: Tensor) -> Tensor:
        self.calls.append((self.training, torch.is_inference_mode_enabled()))
        half = images.shape[-1] // 2
        left = images[..., :half].mean(dim=(1, 2, 3))
        right = images[..., half:].mean(dim=(1, 2, 3))
        halves = torch.stack([left, right], dim=1) * self.scale
        return torch.cat([halves, torch.ones_like(left)[:, None]], dim=1)


def halves_image(left: float, right: float, size: int = 4) -> Tensor:
    """A (3, size, size) image whose left half is ``left`` and right half ``right``."""
    image = torch.full((3, size, size), float(left))
    image[..., size // 2 :] = right
    return image


class ItemDataset(Dataset):
    """Wraps images (and labels) into one of the supported item forms."""

    def __init__(self, images: Tensor, labels: list[int] | None, form: str) -> None:
        self.images, self.labels, self.form = images, labels, form

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> object:
        image = self.images[index]
        if self.form == "tensor":
            return image
        if self.form == "tuple":
            return image, self.labels[index], f"extra-{index}"
        if self.form == "dict":
            return {"image": image, "label": torch.tensor(self.labels[index]), "path": f"{index}.png"}
        return {"image": image}


@pytest.fixture
def images() -> Tensor:
    return torch.rand(10, 3, 6, 8, generator=torch.Generator().manual_seed(0))


LABELS = [5, 3, 9, 0, 2, 2, 7, 1, 4, 8]


def test_embedding_and_norm_match_hand_computed_values() -> None:
    result = extract_embeddings(HalvesModel(), halves_image(1.0, 2.0)[None], progress=False)
    # f = (1, 4, 1): norm sqrt(18)
    np.testing.assert_allclose(result.norms, [np.sqrt(18)], rtol=1e-6)
    np.testing.assert_allclose(result.embeddings, [[1, 4, 1] / np.sqrt(18)], rtol=1e-6)
    assert result.embeddings.dtype == np.float32 and result.norms.dtype == np.float32
    assert result.labels is None


def test_flip_fusion_sums_the_mirrored_view_before_normalising() -> None:
    images = torch.stack([halves_image(1.0, 2.0), halves_image(2.0, 1.0), halves_image(0.0, 3.0)])
    result = extract_embeddings(HalvesModel(), images, flip_fusion=True, progress=False)
    # f(x) + f(flip x) = (l + r, 2(l + r), 2) = (3, 6, 2) for all three images: norm 7
    np.testing.assert_allclose(result.norms, [7.0, 7.0, 7.0], rtol=1e-6)
    np.testing.assert_allclose(result.embeddings, np.tile([3 / 7, 6 / 7, 2 / 7], (3, 1)), rtol=1e-6)
    plain = extract_embeddings(HalvesModel(), images, progress=False)
    # f = (1, 4, 1), (2, 2, 1), (0, 6, 1)
    np.testing.assert_allclose(plain.norms, np.sqrt([18.0, 9.0, 37.0]), rtol=1e-6)


def test_embeddings_have_unit_norm(images: Tensor) -> None:
    result = extract_embeddings(HalvesModel(), images, flip_fusion=True, progress=False)
    assert result.embeddings.shape == (10, 3) and result.norms.shape == (10,)
    np.testing.assert_allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("flip_fusion", [False, True])
def test_batch_size_does_not_change_results(images: Tensor, flip_fusion: bool) -> None:
    results = [
        extract_embeddings(HalvesModel(), images, batch_size=size, flip_fusion=flip_fusion, progress=False)
        for size in (1, 7, 10, 256)
    ]
    for result in results[1:]:
        np.testing.assert_array_equal(result.embeddings, results[0].embeddings)
        np.testing.assert_array_equal(result.norms, results[0].norms)


@pytest.mark.parametrize("form", ["tuple", "dict"])
def test_dataset_tensor_and_dataloader_inputs_agree(images: Tensor, form: str) -> None:
    from_tensor = extract_embeddings(HalvesModel(), images, batch_size=4, progress=False)
    dataset = ItemDataset(images, LABELS, form)
    from_dataset = extract_embeddings(HalvesModel(), dataset, batch_size=3, progress=False)
    from_loader = extract_embeddings(HalvesModel(), DataLoader(dataset, batch_size=4), progress=False)
    for result in (from_dataset, from_loader):
        np.testing.assert_array_equal(result.embeddings, from_tensor.embeddings)
        np.testing.assert_array_equal(result.norms, from_tensor.norms)
        assert result.labels is not None and result.labels.dtype == np.int64
        np.testing.assert_array_equal(result.labels, LABELS)


@pytest.mark.parametrize("form", ["tensor", "image-only dict"])
def test_unlabelled_items_give_no_labels(images: Tensor, form: str) -> None:
    result = extract_embeddings(HalvesModel(), ItemDataset(images, None, form), batch_size=3, progress=False)
    assert result.labels is None
    expected = extract_embeddings(HalvesModel(), images, progress=False)
    np.testing.assert_array_equal(result.embeddings, expected.embeddings)


def test_dataset_with_worker_processes(images: Tensor) -> None:
    dataset = ItemDataset(images, LABELS, "tuple")
    result = extract_embeddings(HalvesModel(), dataset, batch_size=3, num_workers=2, progress=False)
    np.testing.assert_array_equal(result.labels, LABELS)
    expected = extract_embeddings(HalvesModel(), images, progress=False)
    np.testing.assert_array_equal(result.embeddings, expected.embeddings)


def test_runs_in_eval_and_inference_mode_then_restores_modes(images: Tensor) -> None:
    model = HalvesModel().train()
    model.inner.eval()  # a submodule deliberately in another mode
    extract_embeddings(model, images, batch_size=5, flip_fusion=True, progress=False)
    assert model.calls == [(False, True)] * 4
    assert model.training and not model.inner.training
    model.eval()
    extract_embeddings(model, images, progress=False)
    assert not model.training and not model.inner.training


class WrongShapeModel(nn.Module):
    def __init__(self, make_output: object) -> None:
        super().__init__()
        self.make_output = make_output

    def forward(self, images: Tensor) -> object:
        return self.make_output(images)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("make_output", "got"),
    [
        (lambda x: x.mean(dim=(1, 2, 3)), r"\(4,\)"),
        (lambda x: x.mean(dim=(2, 3))[..., None], r"\(4, 3, 1\)"),
        (lambda x: torch.zeros(1, 8), r"\(1, 8\)"),
        (lambda x: (x.mean(dim=(2, 3)),), "tuple"),
    ],
)
def test_wrong_output_shape_raises_and_restores_mode(make_output: object, got: str) -> None:
    model = WrongShapeModel(make_output).train()
    expected = rf"model output is {got} for a batch of 4 images; expected a \(4, D\) tensor"
    with pytest.raises(ValueError, match=expected):
        extract_embeddings(model, torch.zeros(4, 3, 2, 2), progress=False)
    assert model.training


@pytest.mark.parametrize(
    ("images", "error", "message"),
    [
        (torch.zeros(3, 2, 2), ValueError, r"images tensor has shape \(3, 2, 2\); expected \(N, C, H, W\)"),
        (torch.zeros(0, 3, 2, 2), ValueError, "images is empty; expected at least one image"),
        ([torch.zeros(3, 2, 2)], TypeError, "images has type list; expected a Tensor, Dataset or DataLoader"),
    ],
)
def test_bad_inputs_raise(images: object, error: type[Exception], message: str) -> None:
    model = HalvesModel()
    with pytest.raises(error, match=message):
        extract_embeddings(model, images, progress=False)  # type: ignore[arg-type]
    assert model.training


def test_bad_batch_size_raises() -> None:
    with pytest.raises(ValueError, match="batch_size 0 is not valid; expected an int >= 1"):
        extract_embeddings(HalvesModel(), torch.zeros(1, 3, 2, 2), batch_size=0)


def test_bad_items_and_labels_raise(images: Tensor) -> None:
    class Mixed(Dataset):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, index: int) -> object:
            return (images[index], 1) if index == 0 else images[index]

    with pytest.raises(ValueError, match="some dataset items have a label and some do not"):
        extract_embeddings(HalvesModel(), Mixed(), progress=False)
    halves = [0.5] * 10
    float_labels = DataLoader(ItemDataset(images, halves, "tuple"), batch_size=4)  # type: ignore[arg-type]
    message = r"batch labels have shape \(4,\) and dtype torch.float64; expected \(4,\) integers"
    with pytest.raises(ValueError, match=message):
        extract_embeddings(HalvesModel(), float_labels, progress=False)
    with pytest.raises(TypeError, match="a sample has type str; expected a Tensor image"):
        strings = ItemDataset(["not an image"], None, "tensor")  # type: ignore[arg-type]
        extract_embeddings(HalvesModel(), strings, progress=False)
    with pytest.raises(ValueError, match=r"a batch of images is str; expected a \(B, C, H, W\) tensor"):
        extract_embeddings(HalvesModel(), DataLoader(["not an image"]), progress=False)


def test_progress_bar_only_when_asked(images: Tensor, capsys: pytest.CaptureFixture[str]) -> None:
    extract_embeddings(HalvesModel(), images, batch_size=5, progress=False)
    assert capsys.readouterr().err == ""
    extract_embeddings(HalvesModel(), images, batch_size=5, desc="tinyface probes")
    assert "tinyface probes" in capsys.readouterr().err


def test_result_type(images: Tensor) -> None:
    result = extract_embeddings(HalvesModel(), images, progress=False)
    assert isinstance(result, ExtractedEmbeddings)

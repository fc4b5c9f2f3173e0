"""Training transforms (lrfr.data.transforms): the flip by hand, per-sample seeding by (seed, epoch,
index), and the trainer applying a config's transforms, seeded."""

from __future__ import annotations

import pytest
import torch

from lrfr.data.transforms import TRANSFORMS, RandomHorizontalFlip, TransformedDataset, sample_seed
from lrfr.training import DataSpec, ExperimentConfig, HeadSpec, ModelSpec, TrainConfig, Trainer, TransformSpec
from lrfr.training.experiment import build_datasets, classes_per_stream
from lrfr.training.objective import build_objective
from tests.toy import ToyFaces


def image(value: float = 0.0) -> torch.Tensor:
    """(3, 2, 4) image whose columns are 0, 1, 2, 3 (+ value): a flip reverses them."""
    return torch.arange(4.0).expand(3, 2, 4) + value


def test_flip_mirrors_the_named_keys_together_with_probability_p():
    sample = {"image": image(), "lr": image(10.0), "label": torch.tensor(3)}
    flipped = RandomHorizontalFlip(p=1.0, keys=("image", "lr"))(sample, torch.Generator().manual_seed(0))
    assert flipped["image"][0, 0].tolist() == [3, 2, 1, 0] and flipped["lr"][0, 0].tolist() == [13, 12, 11, 10]
    assert flipped["label"] == 3 and sample["image"][0, 0].tolist() == [0, 1, 2, 3]  # input not modified
    kept = RandomHorizontalFlip(p=0.0)(sample, torch.Generator().manual_seed(0))
    assert torch.equal(kept["image"], sample["image"])
    rng = torch.Generator().manual_seed(1)
    draws = [RandomHorizontalFlip(p=0.3)({"image": image()}, rng)["image"][0, 0, 0].item() == 3 for _ in range(2000)]
    assert abs(sum(draws) / 2000 - 0.3) < 0.04
    assert isinstance(TRANSFORMS.build("hflip", p=0.5), RandomHorizontalFlip)
    with pytest.raises(ValueError, match="p 1.5 is not valid"):
        RandomHorizontalFlip(p=1.5)


def test_draws_are_a_function_of_seed_epoch_and_index():
    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, index):
            return image(), torch.tensor(index)  # a pair is read as {"image", "label"}

    dataset = TransformedDataset(Images(), [RandomHorizontalFlip(p=0.5)], seed=7)
    flips = lambda: [bool(dataset[i]["image"][0, 0, 0] == 3) for i in range(64)]  # noqa: E731
    first = flips()
    assert first == flips() and 16 < sum(first) < 48  # the same draws on a second read
    backwards = [bool(dataset[i]["image"][0, 0, 0] == 3) for i in reversed(range(64))][::-1]
    assert backwards == first  # independent of the order in which samples are read (workers)
    dataset.set_epoch(1)
    assert flips() != first
    assert TransformedDataset(Images(), [RandomHorizontalFlip(p=0.5)], seed=8)[0] is not None
    assert len({sample_seed(7, 0, i) for i in range(1000)}) == 1000
    assert sample_seed(7, 0, 5) != sample_seed(8, 0, 5) != sample_seed(7, 1, 5)


def config(transforms: list[TransformSpec], num_workers: int = 0) -> ExperimentConfig:
    return ExperimentConfig(
        name="t",
        train=TrainConfig(seed=3, epochs=1, batch_size=8, device="cpu", progress=False, num_workers=num_workers),
        model=ModelSpec(backbone="quick", backbone_kwargs={"input_size": 32, "embedding_size": 8},
                        heads={"main": HeadSpec("cosface", "main", {"scale": 16.0})}),
        data={"main": DataSpec("tests.toy:make_toy", {"num_classes": 2, "per_class": 8}, transforms)},
    )


def trained(experiment: ExperimentConfig) -> tuple[Trainer, dict[str, torch.Tensor]]:
    datasets = build_datasets(experiment)
    trainer = Trainer(experiment.train, build_objective(experiment.model, classes_per_stream(datasets)), datasets)
    trainer.fit(resume=False)
    return trainer, trainer.objective.state_dict()


def test_training_applies_the_configs_transforms_seeded():
    flips = [TransformSpec("hflip", {"p": 1.0, "keys": ["image", "hr", "lr"]})]
    datasets = build_datasets(config(flips))
    assert isinstance(datasets["main"], TransformedDataset) and datasets["main"].num_classes == 2
    trainer = Trainer(config(flips).train, build_objective(config(flips).model, {"main": 2}), datasets)
    batch = next(trainer._batches(0))
    toy = ToyFaces(num_classes=2, per_class=8)
    originals = torch.stack([toy[i]["image"] for i in range(16)])
    seen = batch["main.image"]
    matches = [[torch.equal(row, original.flip(-1)) for original in originals] for row in seen]
    assert all(any(row) for row in matches)  # every image the model sees is a mirrored toy image
    _, plain = trained(config([]))
    _, half = trained(config([TransformSpec("hflip", {"p": 0.5})]))
    _, again = trained(config([TransformSpec("hflip", {"p": 0.5})], num_workers=2))
    assert any(not torch.equal(plain[k], half[k]) for k in plain)  # the transform changes training
    for key in half:  # seeded: the same weights again, also with worker processes
        torch.testing.assert_close(again[key], half[key], rtol=0, atol=0)

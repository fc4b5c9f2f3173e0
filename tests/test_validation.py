"""Verification accuracy during training: configs, known accuracies on LFW-layout and .bin sets, the
history entries, training unchanged by validating, and errors before a run folder is written."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from lrfr.data.base import LayoutError
from lrfr.training import (
    ConfigError,
    DataSpec,
    ExperimentConfig,
    TrainConfig,
    Trainer,
    ValidationConfig,
    VerificationSetSpec,
    run_experiment,
)
from lrfr.training.validation import load_verification_sets, validate
from tests.fixtures_data import write_verification_bin
from tests.test_training import quick_config, resumable_objective
from tests.toy import ToyFaces

# Two persons per fold, each image a flat colour: person k's colour points along its own axis.
COLOURS = {"Ann_A": (230, 20, 20), "Bob_B": (20, 230, 20), "Cid_C": (20, 20, 230), "Dee_D": (230, 230, 20)}
FOLD_PERSONS = (("Ann_A", "Bob_B"), ("Cid_C", "Dee_D"))


def colour_jpeg(person: str, number: int, size: int = 16) -> bytes:
    shade = np.array(COLOURS[person]) - 4 * number  # a little different per image
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), shade, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def pair_lines() -> list[tuple[str, int, str, int]]:
    """2 folds x (2 genuine + 2 impostor pairs), in pairs.txt order."""
    lines = []
    for a, b in FOLD_PERSONS:
        lines += [(a, 1, a, 2), (b, 1, b, 2), (a, 1, b, 1), (a, 2, b, 2)]
    return lines


def write_lfw(root: Path) -> Path:
    text = ["2 2"]
    for a, n, b, m in pair_lines():
        text.append(f"{a}\t{n}\t{m}" if a == b else f"{a}\t{n}\t{b}\t{m}")
        for person, number in ((a, n), (b, m)):
            (root / person).mkdir(parents=True, exist_ok=True)
            (root / person / f"{person}_{number:04d}.jpg").write_bytes(colour_jpeg(person, number))
    (root / "pairs.txt").write_text("\n".join(text) + "\n")
    return root


def write_bin(path: Path) -> Path:
    images = [colour_jpeg(person, number) for a, n, b, m in pair_lines() for person, number in ((a, n), (b, m))]
    return write_verification_bin(path, images, [a == b for a, _, b, _ in pair_lines()])


class MeanColour(nn.Module):
    """Embeds an image as its mean RGB colour: same person -> cosine ~1, other person -> far lower."""

    input_size = (16, 16)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(2, 3))


class Constant(nn.Module):
    """Every image the same embedding: no pair can be told apart."""

    input_size = (16, 16)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.ones(len(images), 3)


def validation(tmp_path: Path, **settings) -> ValidationConfig:
    sets = [VerificationSetSpec("lfw", str(write_lfw(tmp_path / "lfw"))),
            VerificationSetSpec("bin", str(write_bin(tmp_path / "pairs.bin")))]
    return ValidationConfig(sets=sets, **settings)


# Constant scores: LFW's 2 folds each train on 2 genuine + 2 impostor pairs, a tie broken towards the lowest
# threshold (accept all): 2 of 4 right per fold. The .bin's 10 contiguous folds hold one pair each (8 pairs):
# the other 7 have a majority of the other kind, so the chosen threshold gets the held-out pair wrong: 0.
@pytest.mark.parametrize("model, expected", [(MeanColour(), (1.0, 1.0)), (Constant(), (0.5, 0.0))])
def test_validate_gives_the_known_accuracy_on_both_layouts(tmp_path, model, expected):
    sets = load_verification_sets(validation(tmp_path))
    assert [(s.name, len(s.pairs), int(s.is_same.sum())) for s in sets] == [("lfw", 8, 4), ("bin", 8, 4)]
    scores = validate(model, sets, batch_size=3)
    assert scores == pytest.approx({"val/lfw/accuracy": expected[0], "val/lfw/accuracy_std": 0.0,
                                    "val/bin/accuracy": expected[1], "val/bin/accuracy_std": 0.0})


def test_validation_config_is_checked_with_the_key_path():
    good = {"sets": [{"name": "lfw", "path": "data/lfw"}], "every": 2}
    assert ExperimentConfig.from_dict({"train": {"validation": good}}).train.validation.every == 2
    bad = {
        "config.train.validation.sets": {"sets": []},
        "config.train.validation.every": {**good, "every": 0},
        "config.train.validation.sets.0.path": {"sets": [{"name": "lfw", "path": 3}]},
        "config.train.validation.sets.0.name": {"sets": [{"name": "a/b", "path": "x"}]},
    }
    for where, values in bad.items():
        with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
            ExperimentConfig.from_dict({"train": {"validation": values}})
    with pytest.raises(ConfigError, match="set names must be unique"):
        ExperimentConfig.from_dict({"train": {"validation": {"sets": [good["sets"][0]] * 2}}})


def test_a_config_without_the_new_settings_records_and_hashes_as_before():
    config = ExperimentConfig(name="x")
    assert "validation" not in config.record()["train"] and "finite_check_every" not in config.record()["train"]
    assert ExperimentConfig.from_dict(config.record()) == config
    checked = ExperimentConfig(name="x", train=TrainConfig(finite_check_every=7))
    assert checked.record()["train"]["finite_check_every"] == 7


def test_history_has_the_accuracy_beside_the_loss_and_training_is_unchanged(tmp_path):
    """Validating every 2 epochs (and after the last) logs val/<set>/accuracy in those epochs' entries;
    the weights equal those of a run without validation (the objective draws from the global RNG, so
    an unrestored DataLoader seed draw would change them)."""
    data = {"main": ToyFaces(num_classes=4, per_class=16)}
    config = quick_config(epochs=3, validation=validation(tmp_path, every=2, batch_size=4))
    plain = resumable_objective()
    Trainer(quick_config(epochs=3), plain, data).fit()
    validated = resumable_objective()
    history = Trainer(config, validated, data).fit()
    assert ["val/lfw/accuracy" in entry for entry in history] == [False, True, True]
    assert all(0.0 <= entry["val/bin/accuracy"] <= 1.0 and "loss" in entry for entry in history[1:])
    for key, value in plain.state_dict().items():
        assert torch.equal(value, validated.state_dict()[key]), key


def test_a_missing_validation_set_fails_before_the_run_folder_is_written(tmp_path):
    config = ExperimentConfig(
        name="run", train=quick_config(epochs=1, validation=ValidationConfig(sets=[VerificationSetSpec("lfw", str(tmp_path / "nowhere"))])),
        data={"main": DataSpec("tests.toy:make_toy")},
    )
    with pytest.raises(LayoutError, match="nowhere"):
        run_experiment(config, tmp_path / "results")
    assert not (tmp_path / "results").exists()
    with pytest.raises(LayoutError, match="pairs.bin does not exist"):
        load_verification_sets(ValidationConfig(sets=[VerificationSetSpec("b", str(tmp_path / "pairs.bin"))]))

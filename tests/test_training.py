"""Trainer and composed objective: learning, exact resume, NaN guard, and the four papers' set-ups."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lrfr.io import save_tensors_atomic
from lrfr.losses import build_head
from lrfr.models import build_backbone
from lrfr.runs import RunFolder
from lrfr.training import (
    ClassificationTerm,
    HeadSpec,
    LossTerm,
    ModelSpec,
    NonFiniteLossError,
    Objective,
    OptimizerConfig,
    PixelTerm,
    ScheduleConfig,
    StepContext,
    TermSpec,
    TrainConfig,
    Trainer,
    build_objective,
    seed_everything,
)
from lrfr.training.finite import FiniteGuard
from lrfr.training.trainer import Trainer as TrainerClass
from tests.toy import ToyFaces


def quick_config(**overrides) -> TrainConfig:
    values = dict(
        epochs=3, batch_size=16, progress=False, device="cpu",
        optimizer=OptimizerConfig(name="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4),
        schedule=ScheduleConfig(name="constant"),
    )
    values.update(overrides)
    return TrainConfig(**values)


def classifier(head: str = "arcface", classes: int = 4, **head_kwargs) -> Objective:
    spec = ModelSpec(backbone="quick", heads={"main": HeadSpec(head, classes, head_kwargs)})
    return build_objective(spec)


def nearest_prototype_accuracy(objective: Objective, dataset: ToyFaces) -> float:
    objective.eval()
    images = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    with torch.no_grad():
        cosine = objective.heads["main"].cosine(objective.backbone(images))
    return (cosine.argmax(1) == dataset.labels).float().mean().item()


@pytest.mark.parametrize("head", ["arcface", "softmax"])
def test_loss_decreases_and_the_toy_problem_is_learned(head):
    seed_everything(0)
    data = ToyFaces(num_classes=4, per_class=32)
    objective = classifier(head, scale=16.0, margin=0.2) if head == "arcface" else classifier(head)
    history = Trainer(quick_config(epochs=6), objective, {"main": data}).fit()
    losses = [epoch["loss"] for epoch in history]
    assert losses[-1] < 0.5 * losses[0], losses
    assert [epoch["epoch"] for epoch in history] == list(range(1, 7))
    assert all(epoch["images_per_second"] > 0 for epoch in history)
    if head == "arcface":
        assert nearest_prototype_accuracy(objective, data) >= 0.9


class DropoutTerm(LossTerm):
    """A term drawing from the global RNG every step (so exact resume needs the RNG state restored)."""

    def forward(self, ctx: StepContext) -> torch.Tensor:
        embedding = ctx.embed("main.image").embedding
        return F.dropout(embedding, p=0.5, training=True).pow(2).mean() * 1e-3


def resumable_objective() -> Objective:
    seed_everything(0)
    backbone = build_backbone("quick")
    head = build_head("adaface", embedding_size=backbone.embedding_size, num_classes=4)  # running buffers
    return Objective(backbone, {"main": head}, [ClassificationTerm("cls"), DropoutTerm("noise")])


def test_resume_after_a_kill_gives_the_same_weights(tmp_path, monkeypatch):
    data = {"main": ToyFaces(num_classes=4, per_class=16)}
    config = quick_config(
        epochs=3, keep_checkpoints=None,
        schedule=ScheduleConfig(name="poly", warmup_epochs=1.0, power=2.0),
    )
    straight = RunFolder.create(tmp_path, "straight", {"test": 1}, seed=0)
    Trainer(config, reference := resumable_objective(), data, straight).fit()

    killed = RunFolder.create(tmp_path, "killed", {"test": 1}, seed=0)
    original = TrainerClass._train_epoch

    def killed_in_epoch_two(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill during epoch 2")
        return original(self, epoch)

    monkeypatch.setattr(TrainerClass, "_train_epoch", killed_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, resumable_objective(), data, killed).fit()
    assert killed.latest_checkpoint() == 1
    monkeypatch.setattr(TrainerClass, "_train_epoch", original)

    torch.manual_seed(1234)  # a fresh process: its RNG state differs from the killed one's
    resumed = resumable_objective()
    history = Trainer(config, resumed, data, RunFolder.open(tmp_path / "killed")).fit(resume=True)
    assert [epoch["epoch"] for epoch in history] == [1, 2, 3]
    expected, got = reference.state_dict(), resumed.state_dict()
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    assert killed.metrics()["train_history"][-1]["loss"] == straight.metrics()["train_history"][-1]["loss"]


def test_resume_without_rng_restore_would_differ(tmp_path, monkeypatch):
    """The exact-resume test can fail: skipping the RNG restore changes the final weights."""
    data = {"main": ToyFaces(num_classes=4, per_class=16)}
    config = quick_config(epochs=2)
    Trainer(config, reference := resumable_objective(), data).fit()
    run = RunFolder.create(tmp_path, "r", {"test": 1}, seed=0)
    Trainer(quick_config(epochs=1), resumable_objective(), data, run).fit()
    monkeypatch.setattr("lrfr.training.trainer.restore_rng_state", lambda state: None)
    torch.manual_seed(99)
    resumed = resumable_objective()
    Trainer(config, resumed, data, RunFolder.open(run.path)).fit()
    differs = [k for k, v in reference.state_dict().items() if not torch.equal(v, resumed.state_dict()[k])]
    assert differs


class ExplodingTerm(LossTerm):
    def __init__(self, name: str, at_call: int, bad: float = math.inf) -> None:
        super().__init__(name)
        self.calls, self.at_call, self.bad = 0, at_call, bad

    def forward(self, ctx: StepContext) -> torch.Tensor:
        self.calls += 1
        value = ctx.embed("main.image").embedding.mean() * 0
        return value + (self.bad if self.calls == self.at_call else 0.0)


def exploding_objective(at_call: int, bad: float = math.inf) -> Objective:
    backbone = build_backbone("quick")
    head = build_head("cosface", embedding_size=512, num_classes=4)
    return Objective(backbone, {"main": head}, [ClassificationTerm("cls"), ExplodingTerm("exploding", at_call, bad)])


def test_non_finite_loss_stops_with_the_step_and_term_named():
    trainer = Trainer(quick_config(), exploding_objective(3), {"main": ToyFaces(per_class=16)})
    with pytest.raises(NonFiniteLossError, match=r"global step 2 \(epoch 1, step 3 of 4\).*'exploding' = inf"):
        trainer.fit()


def test_a_nan_at_step_k_is_named_at_the_next_read_every_n_steps(monkeypatch):
    """finite_check_every=5, 4 steps an epoch: the record is read after steps 4 (epoch end), 5 and 8
    (epoch end), not every step; the NaN of step 7 (global step 6) is named there with its term."""
    reads, check = [], FiniteGuard.check
    monkeypatch.setattr(FiniteGuard, "check", lambda self: (reads.append(int(self._step)), check(self))[1])
    trainer = Trainer(quick_config(finite_check_every=5), exploding_objective(7, math.nan), {"main": ToyFaces(per_class=16)})
    with pytest.raises(NonFiniteLossError, match=r"global step 6 \(epoch 2, step 3 of 4\): 'exploding' = nan; terms were cls/ce="):
        trainer.fit()
    assert reads == [4, 5, 8]


def test_the_guard_reads_nothing_from_the_device_between_checks(monkeypatch):
    guard = FiniteGuard(torch.device("cpu"), steps_per_epoch=10)
    guard.start(3)

    def host_read(*args, **kwargs):
        raise AssertionError("the guard read a value on the host between checks")

    with monkeypatch.context() as patch:
        for name in ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__"):
            patch.setattr(torch.Tensor, name, host_read)
        for k in range(4):
            ri = torch.tensor(math.nan if k in (2, 3) else 0.5)
            guard.observe({"cls": torch.tensor(1.0), "ri": ri}, 1.0 + ri)
    with pytest.raises(NonFiniteLossError, match=r"global step 5 \(epoch 1, step 6 of 10\): 'ri' = nan; terms were cls=1, ri=nan$"):
        guard.check()


def test_weights_after_a_non_finite_step_are_never_checkpointed(tmp_path):
    run = RunFolder.create(tmp_path, "r", {"test": 1}, seed=0)
    trainer = Trainer(quick_config(), exploding_objective(4), {"main": ToyFaces(per_class=16)}, run)
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step 4 of 4"):
        trainer.fit()
    assert run.latest_checkpoint() is None


def test_paired_hr_lr_views_share_the_backbone_and_each_term_is_logged():
    """Ling et al. Eq. 7: lambda*L_dist + 1/2 L_cls(f_HR) + 1/2 L_cls(f_LR), one backbone."""
    seed_everything(0)
    spec = ModelSpec(
        backbone="quick", heads={"main": HeadSpec("cosface", 4, {"scale": 16.0})},
        terms=[
            TermSpec("cls_hr", "classification", 0.5, {"input": "main.hr"}),
            TermSpec("cls_lr", "classification", 0.5, {"input": "main.lr"}),
            TermSpec("dist", "feature_distance", 1.0, {"a": "main.hr", "b": "main.lr", "distance": "l2"}),
        ],
    )
    objective = build_objective(spec)
    calls = []
    objective.backbone.register_forward_hook(lambda module, args, out: calls.append(args[0].shape))
    data = ToyFaces(per_class=16)
    batch = {f"main.{k}": torch.stack([data[i][k] for i in range(8)]) for k in ("hr", "lr", "label")}
    objective.eval()
    with torch.no_grad():
        terms = objective(batch)
        hr, lr = objective.backbone(batch["main.hr"]), objective.backbone(batch["main.lr"])
        head = objective.heads["main"]
        expected_cls_hr = 0.5 * F.cross_entropy(head.logits(hr, batch["main.label"]), batch["main.label"])
    assert len(calls) == 2 + 2  # two views in objective(...), then two explicit calls above
    assert set(terms) == {"cls_hr/ce", "cls_lr/ce", "dist"}
    torch.testing.assert_close(terms["cls_hr/ce"], expected_cls_hr)
    torch.testing.assert_close(terms["dist"], (hr - lr).norm(dim=1).mean())
    history = Trainer(quick_config(epochs=2), objective, {"main": data}).fit()
    assert {"cls_hr/ce", "cls_lr/ce", "dist", "loss"} <= set(history[-1])


class TinySR(nn.Module):
    """A residual conv net standing in for VDSR in front of the backbone."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images + self.body(images)


def csri_objective(pixel_weight: float) -> Objective:
    """CSRI Eq. 4: (L_fr^syn + L_fr^nat) + lambda_sr * L_sr, SR shared by both branches."""
    seed_everything(0)
    backbone = build_backbone("quick")
    heads = {
        "syn": build_head("centerface", embedding_size=512, num_classes=4),
        "nat": build_head("centerface", embedding_size=512, num_classes=3),
    }
    terms = [
        ClassificationTerm("fr_syn", head="syn", input="syn.lr", labels="syn.label", super_resolve=True),
        ClassificationTerm("fr_nat", head="nat", input="nat.image", labels="nat.label", super_resolve=True),
        PixelTerm("sr", pixel_weight, lr="syn.lr", hr="syn.hr"),
    ]
    return Objective(backbone, heads, terms, sr=TinySR())


def test_sr_in_front_of_the_backbone_with_two_streams():
    streams = {"syn": ToyFaces(num_classes=4, per_class=16), "nat": ToyFaces(num_classes=3, per_class=8, seed=1)}
    objective = csri_objective(pixel_weight=0.003)
    sr_before = [p.detach().clone() for p in objective.sr.parameters()]
    history = Trainer(quick_config(epochs=2), objective, streams).fit()
    assert {"fr_syn/ce", "fr_syn/center", "fr_nat/ce", "fr_nat/center", "sr"} <= set(history[0])
    assert all(not torch.equal(a, b) for a, b in zip(sr_before, objective.sr.parameters()))

    # joint learning: with lambda_sr = 0 the SR network is still trained, by the recognition loss alone
    objective = csri_objective(pixel_weight=0.0)
    sr_before = [p.detach().clone() for p in objective.sr.parameters()]
    Trainer(quick_config(epochs=1), objective, streams).fit()
    assert any(not torch.equal(a, b) for a, b in zip(sr_before, objective.sr.parameters()))


class FeatureMapRegression(LossTerm):
    """An auxiliary module on the backbone's last feature map (as the RI regression module)."""

    def __init__(self, name: str, channels: int, size: tuple[int, int]) -> None:
        super().__init__(name)
        self.regressor = nn.Sequential(nn.Dropout(0.1), nn.Flatten(), nn.Linear(channels * size[0] * size[1], 1))

    def forward(self, ctx: StepContext) -> torch.Tensor:
        feature_map = ctx.embed("main.image").feature_map
        target = ctx.input("main.image").mean(dim=(1, 2, 3))
        return F.smooth_l1_loss(self.regressor(feature_map).squeeze(1), target, beta=0.75)


def test_auxiliary_module_on_the_feature_map_is_trained_with_the_model():
    seed_everything(0)
    backbone = build_backbone("quick")
    head = build_head("arcface", embedding_size=512, num_classes=4, scale=16.0, margin=0.2)
    regression = FeatureMapRegression("reg", backbone.feature_channels, backbone.feature_map_size)
    objective = Objective(backbone, {"main": head}, [ClassificationTerm("cls"), regression])
    before = [p.detach().clone() for p in regression.parameters()]
    config = quick_config(epochs=4, optimizer=OptimizerConfig(name="adamw", lr=1e-3, weight_decay=0.0))
    history = Trainer(config, objective, {"main": ToyFaces(per_class=16)}).fit()
    assert all(not torch.equal(a, b) for a, b in zip(before, regression.parameters()))
    assert history[-1]["reg"] < history[0]["reg"]
    assert any(k.startswith("terms.1.regressor") for k in objective.state_dict())


def test_frozen_pretrained_backbone_trains_only_the_new_parts(tmp_path):
    seed_everything(0)
    pretrained = classifier("arcface", scale=16.0, margin=0.2)
    Trainer(quick_config(epochs=1), pretrained, {"main": ToyFaces(per_class=16)}).fit()
    weights = tmp_path / "pretrained.safetensors"
    save_tensors_atomic(weights, pretrained.state_dict())

    spec = ModelSpec(
        backbone="quick", heads={"main": HeadSpec("cosface", 5, {"scale": 16.0})},
        freeze=["backbone"], pretrained=str(weights),
    )
    objective = build_objective(spec)
    backbone_before = {k: v.clone() for k, v in objective.backbone.state_dict().items()}
    for key, value in backbone_before.items():
        assert torch.equal(value, pretrained.backbone.state_dict()[key]), key
    head_before = objective.heads["main"].weight.detach().clone()
    trainer = Trainer(quick_config(epochs=2), objective, {"main": ToyFaces(num_classes=5, per_class=8)})
    assert sum(p.numel() for g in trainer.optimizer.param_groups for p in g["params"]) == head_before.numel()
    trainer.fit()
    for key, value in objective.backbone.state_dict().items():
        assert torch.equal(value, backbone_before[key]), key  # weights and batch-norm statistics
    assert not torch.equal(objective.heads["main"].weight, head_before)


def test_pretrained_weights_that_do_not_fit_are_named(tmp_path):
    weights = tmp_path / "w.safetensors"
    save_tensors_atomic(weights, {"backbone.stem.0.weight": torch.zeros(1, 2, 3, 3)})
    with pytest.raises(ValueError, match=r"backbone\.stem\.0\.weight"):
        build_objective(ModelSpec(heads={"main": HeadSpec("cosface", 3)}, pretrained=str(weights)))


def test_bad_set_ups_get_clear_errors():
    objective = classifier()
    with pytest.raises(ValueError, match="fewer than one batch"):
        Trainer(quick_config(batch_size=1000), objective, {"main": ToyFaces()})
    with pytest.raises(ValueError, match="unique names"):
        Objective(build_backbone("quick"), {}, [ClassificationTerm("a"), ClassificationTerm("a")])
    with pytest.raises(ValueError, match="cannot freeze 'encoder'"):
        Objective(build_backbone("quick"), {}, [ClassificationTerm("a")], frozen=("encoder",))
    with pytest.raises(ValueError, match="num_classes are"):
        build_objective(ModelSpec(heads={"main": HeadSpec("arcface", "train")}))


class ToyBatch(dict):
    def __init__(self) -> None:
        super().__init__({"main.image": torch.zeros(2, 3, 32, 32), "main.label": torch.zeros(2, dtype=torch.long)})


def test_missing_batch_entry_is_named():
    spec = ModelSpec(heads={"main": HeadSpec("cosface", 3)}, terms=[TermSpec("c", "classification", 1.0, {"input": "main.lr"})])
    with pytest.raises(KeyError, match="batch has no entry 'main.lr'"):
        build_objective(spec)(ToyBatch())


def test_gradient_clipping_bounds_the_update():
    """With plain SGD (no momentum/decay) one step moves the parameters by lr * clipped gradient."""
    seed_everything(0)
    objective = classifier("cosface", scale=16.0)
    before = torch.cat([p.detach().flatten().clone() for p in objective.parameters() if p.requires_grad])
    config = quick_config(epochs=1, clip_grad_norm=1e-3,
                          optimizer=OptimizerConfig(name="sgd", lr=1.0, momentum=0.0, weight_decay=0.0))
    Trainer(config, objective, {"main": ToyFaces(per_class=4)}).fit()  # 16 samples: exactly one step
    after = torch.cat([p.detach().flatten() for p in objective.parameters() if p.requires_grad])
    assert (after - before).norm().item() == pytest.approx(1e-3, rel=1e-3)

"""Chai et al. 2023: RI (Eq. 1-3), smooth L1 (Eq. 4), ID loss (Eq. 5-7), projection and attention loss
(Eq. 8-9), the perceptibility modules, and the ``recognizability`` term inside a real training run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from lrfr.experiments.chai2023 import recognizability_outputs
from lrfr.losses import (
    attention_mse,
    index_diversion_loss,
    project_away_from_ui,
    recognizability_index,
    ri_regression_loss,
    ui_ri_statistics,
)
from lrfr.losses.recognizability_index import ONE_SIDED_95
from lrfr.models import PerceptibilityAttention, PerceptibilityRegression, build_backbone
from lrfr.protocols.quality import ui_center
from lrfr.runs import RunFolder
from lrfr.training import (
    TERMS,
    DataSpec,
    ExperimentConfig,
    HeadSpec,
    LossTerm,
    ModelSpec,
    OptimizerConfig,
    RecognizabilityTerm,
    ScheduleConfig,
    TermSpec,
    TrainConfig,
    Trainer,
    build_objective,
    seed_everything,
)
from lrfr.training.experiment import build_datasets, classes_per_stream
from lrfr.training.recognizability_term import batch_ui_center
from tests.toy import ToyFaces

F64 = torch.float64
SQRT_HALF = math.sqrt(0.5)


# ------------------------------------------------------------------------------ Eq. 1-3
def test_ri_on_a_hand_computed_2d_example():
    prototypes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=F64)  # w0, w1, w2
    center = torch.tensor([2.0, 2.0], dtype=F64)  # normalised: (1, 1) / sqrt(2)
    embeddings = torch.tensor([[3.0, 4.0], [0.0, -2.0]], dtype=F64)
    labels = torch.tensor([0, 1])
    terms = recognizability_index(embeddings, labels, prototypes, center)
    # sample 0: v = (0.6, 0.8), y = 0. cos(w0) = 0.6, cos(w1) = 0.8, cos(w2) = -0.6, cos(c) = 1.4 / sqrt(2)
    #   d_P = 1 - 0.6 = 0.4, d_N = 1 - max(0.8, -0.6) = 0.2, d_UI = 1 - 0.7 sqrt(2)
    # sample 1: v = (0, -1), y = 1. cos(w1) = -1, cos(w0) = cos(w2) = 0, cos(c) = -1 / sqrt(2)
    #   d_P = 2, d_N = 1 - 0 = 1, d_UI = 1 + 1 / sqrt(2)
    d_ui = [1 - 0.7 * math.sqrt(2), 1 + SQRT_HALF]
    torch.testing.assert_close(terms.d_p, torch.tensor([0.4, 2.0], dtype=F64))
    torch.testing.assert_close(terms.d_n, torch.tensor([0.2, 1.0], dtype=F64))
    torch.testing.assert_close(terms.d_ui, torch.tensor(d_ui, dtype=F64))
    expected = [d_ui[0] * 0.2 / (0.4 + 1e-7), d_ui[1] * 1.0 / (2.0 + 1e-7)]
    torch.testing.assert_close(terms.ri, torch.tensor(expected, dtype=F64))


def test_ri_eps_when_the_embedding_is_its_prototype():
    # 3-D: v = (0, 0, 5) -> (0, 0, 1) = w0 exactly, so d_P = 0; cos(w1) = 1 / sqrt(2), cos(w2) = 0;
    # the center (1, 0, 0) is orthogonal, d_UI = 1; d_N = 1 - 1 / sqrt(2); RI = d_UI d_N / eps
    prototypes = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    embeddings, labels, center = torch.tensor([[0.0, 0.0, 5.0]]), torch.tensor([0]), torch.tensor([1.0, 0.0, 0.0])
    for eps in (1e-7, 1e-2):
        terms = recognizability_index(embeddings, labels, prototypes, center, eps=eps)
        assert terms.d_p.item() == 0.0 and terms.d_ui.item() == 1.0
        assert terms.ri.item() == pytest.approx((1 - SQRT_HALF) / eps, rel=1e-6)


def test_ri_stays_positive_when_float32_rounding_puts_a_cosine_above_one():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(200, 64, generator=generator)
    prototypes = torch.cat([embeddings, torch.randn(1, 64, generator=generator)])  # w_i = v_i
    terms = recognizability_index(embeddings, torch.arange(200), prototypes, torch.randn(64, generator=generator))
    assert (terms.d_p >= 0).all() and (terms.d_p < 1e-6).all()
    assert (terms.ri >= 0).all() and torch.isfinite(terms.ri).all()


@pytest.mark.parametrize(
    ("embeddings", "labels", "prototypes", "center", "message"),
    [
        (torch.ones(3), torch.zeros(3, dtype=torch.long), torch.eye(3), torch.ones(3), r"embeddings have shape \(3,\)"),
        (torch.ones(2, 3), torch.zeros(2, dtype=torch.long), torch.eye(4), torch.ones(3), r"prototypes .* \(C, 3\)"),
        (torch.ones(2, 3), torch.zeros(2, dtype=torch.long), torch.ones(1, 3), torch.ones(3), "C >= 2"),
        (torch.ones(2, 3), torch.zeros(2, dtype=torch.long), torch.eye(3), torch.ones(2), r"ui_center .* \(3,\)"),
        (torch.ones(2, 3), torch.tensor([0, 3]), torch.eye(3), torch.ones(3), r"labels must lie in \[0, 2\]"),
        (torch.ones(2, 3), torch.tensor([-1, 0]), torch.eye(3), torch.ones(3), r"labels must lie in \[0, 2\]"),
        (torch.ones(2, 3), torch.zeros(2), torch.eye(3), torch.ones(3), r"expected \(2,\) integers"),
    ],
)
def test_ri_input_errors_are_named(embeddings, labels, prototypes, center, message):
    with pytest.raises(ValueError, match=message):
        recognizability_index(embeddings, labels, prototypes, center)


def test_ri_gradcheck_in_float64():
    generator = torch.Generator().manual_seed(1)
    embeddings = torch.randn(5, 6, dtype=F64, generator=generator, requires_grad=True)
    prototypes = torch.randn(4, 6, dtype=F64, generator=generator, requires_grad=True)
    center = torch.randn(6, dtype=F64, generator=generator, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3, 1])
    assert torch.autograd.gradcheck(
        lambda v, w, c: recognizability_index(v, labels, w, c).ri, (embeddings, prototypes, center)
    )


# ------------------------------------------------------------------------------ Eq. 4-7
def test_smooth_l1_both_branches_by_hand():
    predicted, target = torch.tensor([0.5, 3.0]), torch.tensor([0.0, 1.0])
    # |e| = 0.5 < 0.75: 0.5 * 0.5^2 / 0.75 = 1/6;  |e| = 2 >= 0.75: 2 - 0.5 * 0.75 = 1.625
    assert ri_regression_loss(predicted, target).item() == pytest.approx((1 / 6 + 1.625) / 2)
    assert ri_regression_loss(predicted[:1], target[:1], beta=0.75).item() == pytest.approx(1 / 6)
    assert ri_regression_loss(predicted[1:], target[1:]).item() == pytest.approx(1.625)
    with pytest.raises(ValueError, match="shape"):
        ri_regression_loss(predicted, target[:, None])


def test_ui_statistics_are_the_mean_and_unbiased_std():
    mu, sigma = ui_ri_statistics(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    # mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, divided by K - 1 = 3
    assert mu.item() == pytest.approx(2.5) and sigma.item() == pytest.approx(math.sqrt(5 / 3))
    with pytest.raises(ValueError, match="at least 2"):
        ui_ri_statistics(torch.tensor([1.0]))


def test_index_diversion_loss_by_hand():
    predicted = torch.tensor([0.5, 2.0, -1.0])
    # standard normal: div = xi_hat; max(0, 1.645 - div) = 1.145, 0 (outside the margin), 2.645
    assert index_diversion_loss(predicted).item() == pytest.approx((1.145 + 0 + 2.645) / 3)
    # estimated mu = 1, sigma = 2: div = -0.25, 0.5, -1 -> 1.895, 1.145, 2.645
    assert index_diversion_loss(predicted, 1.0, 2.0).item() == pytest.approx((1.895 + 1.145 + 2.645) / 3)
    # tau = 0 with tensor statistics: max(0, -div) = 0.25, 0, 1
    mu, sigma = torch.tensor(1.0), torch.tensor(2.0)
    assert index_diversion_loss(predicted, mu, sigma, tau=0.0).item() == pytest.approx(1.25 / 3)
    with pytest.raises(ValueError, match="sigma_ui must be positive"):
        index_diversion_loss(predicted, 0.0, 0.0)


def test_index_diversion_loss_gradcheck_in_float64():
    # div = (xi_hat - 0.2) / 1.5 = 0.067, 1.867, -0.933, 0.533: only the second is past tau = 1.645
    predicted = torch.tensor([0.3, 3.0, -1.2, 1.0], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: index_diversion_loss(x, 0.2, 1.5), (predicted,))
    predicted.grad = None
    index_diversion_loss(predicted, 0.2, 1.5).backward()
    # d/dxi of mean(max(0, tau - (xi - mu) / sigma)) = -1 / (sigma B) inside the margin, 0 outside
    expected = [-1 / 6, 0.0, -1 / 6, -1 / 6]
    torch.testing.assert_close(predicted.grad, torch.tensor(expected, dtype=F64))


# ------------------------------------------------------------------------------ Eq. 8-9
def test_projection_away_from_the_ui_center():
    v, center = torch.tensor([[3.0, 4.0]]), torch.tensor([0.0, 2.0])  # u = (0, 1), <v, u> = 4
    torch.testing.assert_close(project_away_from_ui(v, center), torch.tensor([[3.0, 0.0]]))
    torch.testing.assert_close(project_away_from_ui(v, center, amount=0.5), torch.tensor([[3.0, 2.0]]))
    generator = torch.Generator().manual_seed(2)
    rows, center = torch.randn(6, 5, dtype=F64, generator=generator), torch.randn(5, dtype=F64, generator=generator)
    unit = center / center.norm()
    torch.testing.assert_close(project_away_from_ui(rows, center) @ unit, torch.zeros(6, dtype=F64))
    torch.testing.assert_close(project_away_from_ui(rows, center, amount=0.0), rows)
    as_numpy = project_away_from_ui(rows.numpy().astype(np.float32), center.numpy())
    assert isinstance(as_numpy, np.ndarray) and as_numpy.dtype == np.float32
    np.testing.assert_allclose(as_numpy @ unit.numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(as_numpy, project_away_from_ui(rows, center).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"amount must lie in \[0, 1\]"):
        project_away_from_ui(rows, center, amount=1.5)
    with pytest.raises(ValueError, match="zero vector"):
        project_away_from_ui(rows, torch.zeros(5, dtype=F64))


def test_attention_mse_literal_and_mean_reductions():
    attended = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    projected = torch.tensor([[1.0, 2.0], [1.0, 3.0]])
    # squared errors [[1, 4], [0, 4]]: per-sample sums 5 and 4, batch mean 4.5 (Eq. 9 as printed)
    assert attention_mse(attended, projected).item() == pytest.approx(4.5)
    # per-element mean: 9 / 4 = 4.5 / D with D = 2
    assert attention_mse(attended, projected, reduction="mean").item() == pytest.approx(2.25)
    assert attention_mse(attended, projected, "mean").item() == pytest.approx(F.mse_loss(attended, projected).item())
    with pytest.raises(ValueError, match="reduction"):
        attention_mse(attended, projected, "none")


# ------------------------------------------------------------------------------ modules
def test_regression_module_is_flatten_dropout_linear():
    module = PerceptibilityRegression(8, (2, 3))
    assert [type(layer).__name__ for layer in module] == ["Flatten", "Dropout", "Linear"]
    assert module[1].p == 0.4 and module[2].in_features == 8 * 2 * 3
    feature_map = torch.randn(5, 8, 2, 3)
    module.eval()
    expected = feature_map.flatten(1) @ module[2].weight[0] + module[2].bias
    torch.testing.assert_close(module(feature_map), expected)


def test_attention_shapes_and_maps_in_unit_interval():
    module = PerceptibilityAttention(32, (4, 4), 16, reduction=16, spatial_kernel=7)
    assert module.channel_mlp[0].out_features == 2 and module.spatial_conv.kernel_size == (7, 7)
    feature_map = torch.randn(3, 32, 4, 4)
    output = module(feature_map, return_maps=True)
    assert output.attended.shape == (3, 16) and output.channel.shape == (3, 32) and output.spatial.shape == (3, 4, 4)
    for attention_map in (output.channel, output.spatial):
        assert ((attention_map >= 0) & (attention_map <= 1)).all()
    torch.testing.assert_close(module(feature_map), output.attended)


def test_attention_known_answers_fix_cbam_order():
    torch.manual_seed(3)
    module = PerceptibilityAttention(8, (3, 3), 5, reduction=2, spatial_kernel=3)
    feature_map = torch.randn(2, 8, 3, 3)
    with torch.no_grad():  # zero weights: sigmoid(0) = 0.5 everywhere, so F'' = F / 4
        module.channel_mlp[2].weight.zero_()
        module.spatial_conv.weight.zero_()
    output = module(feature_map, return_maps=True)
    assert (output.channel == 0.5).all() and (output.spatial == 0.5).all()
    torch.testing.assert_close(output.attended, module.fc((feature_map / 4).flatten(1)))

    with torch.no_grad():  # spatial conv = the centre tap of the max map: M_s = sigmoid(max_c F')
        module.spatial_conv.weight[0, 1, 1, 1] = 1.0
    spatial = module(feature_map, return_maps=True).spatial
    # channel first: F' = 0.5 F, so M_s = sigmoid(0.5 max_c F); spatial first would give sigmoid(max_c F)
    torch.testing.assert_close(spatial, torch.sigmoid(0.5 * feature_map.amax(1)))
    assert not torch.allclose(spatial, torch.sigmoid(feature_map.amax(1)))

    with torch.no_grad():  # a non-trivial MLP: M_c is computed on F itself, before any spatial weighting
        module.channel_mlp[2].weight.normal_()
    channel = module(feature_map, return_maps=True).channel
    mlp = module.channel_mlp
    torch.testing.assert_close(channel, torch.sigmoid(mlp(feature_map.mean((2, 3))) + mlp(feature_map.amax((2, 3)))))


def test_attention_rejects_even_kernels():
    with pytest.raises(ValueError, match="odd"):
        PerceptibilityAttention(8, 3, 5, spatial_kernel=4)


# ------------------------------------------------------------------------------ the term
class ToyUI(Dataset):
    """Unlabelled UI faces: dim, low-contrast noise with no class template."""

    def __init__(self, count: int = 48, size: int = 32, seed: int = 7) -> None:
        self.images = 0.3 * torch.randn(count, 3, size, size, generator=torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[index]}


def make_ui(**kwargs) -> ToyUI:
    """Factory named in experiment configs as ``"tests.test_recognizability:make_ui"``."""
    return ToyUI(**kwargs)


def experiment(epochs: int = 2, **ri_kwargs) -> ExperimentConfig:
    return ExperimentConfig(
        name="ri",
        train=TrainConfig(
            epochs=epochs, batch_size=16, progress=False, device="cpu", keep_checkpoints=None,
            optimizer=OptimizerConfig(name="sgd", lr=0.05), schedule=ScheduleConfig(name="constant"),
        ),
        model=ModelSpec(
            backbone="quick",
            heads={"main": HeadSpec("arcface", "main", {"scale": 16.0, "margin": 0.2})},
            terms=[TermSpec("cls", "classification"), TermSpec("ri", "recognizability", 1.0, ri_kwargs)],
        ),
        data={
            "main": DataSpec("tests.toy:make_toy", {"num_classes": 4, "per_class": 16}),
            "ui": DataSpec("tests.test_recognizability:make_ui", {}),
        },
    )


def build(config: ExperimentConfig):
    seed_everything(config.train.seed)
    datasets = build_datasets(config)
    objective = build_objective(config.model, classes_per_stream(datasets))
    return objective, objective.terms[1], datasets


def toy_batch(count: int = 8) -> dict[str, torch.Tensor]:
    data, ui = ToyFaces(num_classes=4, per_class=16), ToyUI()
    indices = range(0, 64, 64 // count)
    return {
        "main.image": torch.stack([data[i]["image"] for i in indices]),
        "main.label": torch.stack([data[i]["label"] for i in indices]),
        "ui.image": ui.images[:count],
    }


def test_training_run_logs_the_three_parts_and_moves_the_unit_center():
    config = experiment()
    objective, term, datasets = build(config)
    assert isinstance(TERMS.build("recognizability", name="x"), RecognizabilityTerm)
    assert isinstance(term, RecognizabilityTerm) and term.regression is not None  # set up by build_objective
    centers = []
    term.register_forward_hook(lambda module, args, out: centers.append(module.ui_center.clone()))
    trainer = Trainer(config.train, objective, datasets)
    trained = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert all(id(p) in trained for p in term.parameters())  # the optimizer sees the term's modules
    history = trainer.fit()
    assert {"cls/ce", "ri/l1", "ri/id", "ri/mse"} <= set(history[-1])
    assert all(math.isfinite(epoch[key]) for epoch in history for key in ("ri/l1", "ri/id", "ri/mse"))
    assert len(centers) == 8 and term.ui_updates.item() == 8  # 64 images / 16 per step, 2 epochs
    for center in centers:
        assert center.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert 1 - F.cosine_similarity(centers[0], centers[-1], dim=0).item() > 1e-4


def test_ui_update_replaces_then_blends_and_leaves_batch_norm_alone():
    objective, term, _ = build(experiment())
    backbone = objective.train().backbone
    images = ToyUI().images
    statistics = {k: v.clone() for k, v in backbone.state_dict().items() if "running" in k}
    term.observe_ui(backbone, images[:16])
    with torch.no_grad():
        first = batch_ui_center(backbone.eval()(images[:16]))
        second = batch_ui_center(backbone(images[16:32]))
    backbone.train()
    torch.testing.assert_close(term.ui_center, first)  # the first batch replaces the unset center
    term.observe_ui(backbone, images[16:32])
    torch.testing.assert_close(term.ui_center, F.normalize(0.9 * first + 0.1 * second, dim=0))
    assert backbone.training and all(module.training for module in backbone.modules())
    for key, value in backbone.state_dict().items():
        if key in statistics:
            assert torch.equal(value, statistics[key]), key


def test_batch_center_matches_the_protocol_ui_center():
    rows = torch.randn(10, 7, generator=torch.Generator().manual_seed(4))
    np.testing.assert_allclose(batch_ui_center(rows).numpy(), ui_center(rows), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("weights", "parts"),
    [
        ({"alpha": 0.0, "beta": 2.0, "gamma": 0.0}, {"id"}),  # ablation I
        ({"alpha": 0.0, "beta": 0.0, "gamma": 1.0}, {"mse"}),  # ablation II
        ({"alpha": 5.0, "beta": 0.0, "gamma": 0.0}, {"l1"}),  # ablation III
        ({}, {"l1", "id", "mse"}),
    ],
)
def test_ablation_weights_drop_parts(weights, parts):
    objective, term, _ = build(experiment(**weights))
    objective.train()
    terms = objective(toy_batch())
    assert set(terms) == {"cls/ce"} | {f"ri/{part}" for part in parts}
    sum(terms.values()).backward()
    assert (term.regression[2].weight.grad is not None) == bool(parts & {"l1", "id"})
    assert (term.attention.fc.weight.grad is not None) == ("mse" in parts)


def test_parts_match_the_loss_functions():
    objective, term, _ = build(experiment(regression_dropout=0.0, tau=1.0, mse_reduction="mean"))
    batch = toy_batch()
    term.observe_ui(objective.backbone, batch["ui.image"])
    objective.eval()  # no UI update in eval mode: the center is the one just set
    center = term.ui_center.clone()
    with torch.no_grad():
        parts = objective(batch)
        output = objective.backbone(batch["main.image"], return_feature_map=True)
        ri = recognizability_index(output.embedding, batch["main.label"], objective.heads["main"].weight, center).ri
        predicted = term.regression(output.feature_map)
        projected = project_away_from_ui(output.embedding, center)
        attended = term.attention(output.feature_map)
    assert torch.equal(term.ui_center, center)
    torch.testing.assert_close(parts["ri/l1"], 5.0 * ri_regression_loss(predicted, ri))
    torch.testing.assert_close(parts["ri/id"], 2.0 * index_diversion_loss(predicted, tau=1.0))
    torch.testing.assert_close(parts["ri/mse"], 1.0 * F.mse_loss(attended, projected))


def test_estimated_statistics_use_the_fifo_of_ui_ris():
    objective, term, _ = build(experiment(ui_statistics="estimated", ui_samples=20, regression_dropout=0.0))
    assert term.ui_ri_queue.shape == (20,)
    images = ToyUI().images
    backbone = objective.backbone.eval()
    with torch.no_grad():
        ris = [term.regression(backbone(images[i : i + 16], return_feature_map=True).feature_map) for i in (0, 16)]
    objective.train()
    term.observe_ui(objective.backbone, images[:16])
    mu, sigma = term.ui_ri_moments()
    torch.testing.assert_close(mu, ris[0].mean())
    torch.testing.assert_close(sigma, ris[0].std())
    term.observe_ui(objective.backbone, images[16:32])
    # a ring of 20: batch 1 filled slots 0-15; batch 2 wrote slots 16-19 then 0-11, so slots 12-15 keep
    # the last 4 of batch 1 (the FIFO holds the last 20 UI RIs)
    kept = torch.cat([ris[1][4:], ris[0][12:], ris[1][:4]])
    torch.testing.assert_close(term.ui_ri_queue, kept)
    assert term.ui_ri_count.item() == 32
    torch.testing.assert_close(term.ui_ri_moments(), ui_ri_statistics(torch.cat([ris[0][12:], ris[1]])))

    objective.eval()
    batch = toy_batch()
    with torch.no_grad():
        parts = objective(batch)
        predicted = term.regression(objective.backbone(batch["main.image"], return_feature_map=True).feature_map)
    torch.testing.assert_close(parts["ri/id"], 2.0 * index_diversion_loss(predicted, *term.ui_ri_moments()))


def test_standard_normal_statistics_are_zero_and_one():
    _, term, _ = build(experiment())
    assert term.ui_ri_moments() == (0.0, 1.0) and not hasattr(term, "ui_ri_queue")


def test_checkpoint_resume_keeps_the_center_and_fifo(tmp_path):
    config = experiment(epochs=1, ui_statistics="estimated", ui_samples=40)
    objective, term, datasets = build(config)
    run = RunFolder.create(tmp_path, "ri", config.to_dict(), seed=0)
    Trainer(config.train, objective, datasets, run).fit()
    assert {"terms.1.ui_center", "terms.1.ui_updates", "terms.1.ui_ri_queue"} <= set(objective.state_dict())

    resumed, resumed_term, _ = build(config)
    assert resumed_term.ui_updates.item() == 0
    Trainer(config.train, resumed, datasets, RunFolder.open(run.path)).fit(resume=True)  # loads, trains nothing
    for name in ("ui_center", "ui_updates", "ui_ri_queue", "ui_ri_count"):
        assert torch.equal(getattr(resumed_term, name), getattr(term, name)), name
    assert term.ui_updates.item() == 4 and term.ui_ri_count.item() == 64


def test_set_ui_center_without_a_ui_stream():
    objective, term, _ = build(experiment(ui=None))
    objective.train()
    with pytest.raises(RuntimeError, match="no UI center"):
        objective(toy_batch())
    term.set_ui_center(np.array([3.0] + [0.0] * 511))
    objective(toy_batch())  # no ui stream: the center never moves
    assert torch.equal(term.ui_center, F.one_hot(torch.tensor(0), 512).float())
    with pytest.raises(ValueError, match="non-zero vector of 512"):
        term.set_ui_center(torch.zeros(512))


def test_predict_and_outputs_for_the_chapter():
    objective, term, _ = build(experiment())
    objective.train()
    images = ToyUI(count=10).images
    outputs = recognizability_outputs(objective, images, batch_size=4)
    assert objective.training and term.regression.training  # modes restored
    assert outputs["embedding"].shape == (10, 512) and outputs["attended"].shape == (10, 512)
    assert outputs["ri_learned"].shape == (10,) and outputs["ri_learned"].dtype == np.float32
    objective.eval()
    with torch.no_grad():
        output = objective.backbone(images, return_feature_map=True)
        ri, attended = term.predict(output.feature_map)
    for key, expected in (("embedding", output.embedding), ("ri_learned", ri), ("attended", attended)):
        scale = expected.abs().max().item()  # batches of 4 vs 10: float32 summation order differs
        np.testing.assert_allclose(outputs[key], expected.numpy(), rtol=0, atol=1e-5 * scale)


def test_term_set_up_errors_are_clear():
    with pytest.raises(ValueError, match="estimated"):
        RecognizabilityTerm("ri", ui=None, ui_statistics="estimated")
    with pytest.raises(ValueError, match="ui_statistics must be one of"):
        RecognizabilityTerm("ri", ui_statistics="normal")
    with pytest.raises(ValueError, match=">= 0"):
        RecognizabilityTerm("ri", alpha=-1.0)
    with pytest.raises(RuntimeError, match="call term.setup"):
        RecognizabilityTerm("ri").set_ui_center(torch.ones(4))
    terms = [TermSpec("ri", "recognizability", 1.0, {"gamma": 0.0})]
    spec = ModelSpec(heads={"main": HeadSpec("softmax", 4)}, terms=terms)
    objective = build_objective(spec)
    objective.terms[0].set_ui_center(torch.ones(512))
    with pytest.raises(ValueError, match="head 'main' \\(SoftmaxHead\\) has no class prototypes"):
        objective(toy_batch())
    assert LossTerm("plain").setup(build_backbone("quick")) is None


@pytest.mark.parametrize("detach_target", [True, False])
def test_the_ri_target_reaches_the_embedding_only_when_not_detached(detach_target):
    objective, term, _ = build(experiment(regression_dropout=0.0, beta=0.0, gamma=0.0, detach_target=detach_target))
    batch = toy_batch()
    term.observe_ui(objective.backbone, batch["ui.image"])
    objective.eval()
    captured = {}
    handle = objective.backbone.head.register_forward_hook(lambda module, args, out: captured.setdefault("v", out))
    l1 = objective(batch)["ri/l1"]
    handle.remove()
    # the L1 part reaches v through the target only (the regression reads the feature map, not v)
    (gradient,) = torch.autograd.grad(l1, captured["v"], allow_unused=True)
    assert (gradient is None or not gradient.any()) == detach_target


def test_ablation_i_reaches_the_backbone_only_when_the_id_loss_acts_on_the_embeddings_ri():
    # Row I (cls + ID only): on the learned RI, the regression bias alone can zero the ID loss, after
    # which no gradient reaches the backbone (the degenerate case); on the RI of Eq. 1-3 of the embedding
    # (id_source="embedding") the hard faces keep a loss whose gradient reaches the backbone.
    batch = toy_batch()
    gradients = {}
    for source in ("learned", "embedding"):
        objective, term, _ = build(experiment(alpha=0.0, beta=2.0, gamma=0.0, id_source=source))
        with torch.no_grad():
            term.regression[2].bias.fill_(10.0)  # what a few steps of row I do to the learned RI
        objective.train()
        terms = objective(batch)
        objective.zero_grad()
        terms["ri/id"].backward()
        backbone = [p.grad for p in objective.backbone.parameters()]
        gradients[source] = (terms["ri/id"].item(), sum(0.0 if g is None else g.abs().sum().item() for g in backbone))
    assert gradients["learned"] == (0.0, 0.0)
    loss, gradient = gradients["embedding"]
    with torch.no_grad():
        output = objective.backbone.eval()(batch["main.image"])
        ri = recognizability_index(output, batch["main.label"], objective.heads["main"].weight, term.ui_center).ri
    assert loss > 0 and gradient > 0 and (ri < ONE_SIDED_95).any()


def test_id_on_the_embedding_is_eq7_of_the_embeddings_ri_and_refuses_estimated_statistics():
    objective, term, _ = build(experiment(alpha=0.0, beta=2.0, gamma=0.0, id_source="embedding", tau=1.0))
    batch = toy_batch()
    term.observe_ui(objective.backbone, batch["ui.image"])
    objective.eval()
    with torch.no_grad():
        parts = objective(batch)
        output = objective.backbone(batch["main.image"])
        ri = recognizability_index(output, batch["main.label"], objective.heads["main"].weight, term.ui_center).ri
    torch.testing.assert_close(parts["ri/id"], 2.0 * index_diversion_loss(ri, tau=1.0))
    with pytest.raises(ValueError, match="id_source='embedding' needs ui_statistics='standard_normal'"):
        RecognizabilityTerm("ri", id_source="embedding", ui_statistics="estimated")
    with pytest.raises(ValueError, match="id_source must be one of"):
        RecognizabilityTerm("ri", id_source="prototype")

"""CSRI (Cheng et al. 2018): the two branches share one SR network and one backbone, and both train them."""

from __future__ import annotations

import copy

import pytest
import torch

from lrfr.experiments.cheng2018 import LAMBDA_SR, Schedule, Setting, csri_config, finetune_config, sr_config
from lrfr.models.sr import VDSR
from lrfr.training import Objective, build_objective

SETTING = Setting(data_root="/nowhere", pretrained="/nowhere/pretrain", input_size=32, embedding_size=16)
SMALL_SR = {"depth": 3, "channels": 4}


def _csri(step: int = 2) -> Objective:
    config = csri_config("csri", step, SETTING, Schedule(), pretrained="/nowhere/step1", sr_kwargs=SMALL_SR)
    model = config.model
    model.pretrained = None  # build without weights: the structure is what is tested here
    return build_objective(model, {"nat": 5, "syn": 7})


def _batch(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.rand(*shape, generator=generator) * 2 - 1  # noqa: E731
    return {
        "nat.image": rand(4, 3, 32, 32), "nat.label": torch.tensor([0, 1, 2, 3]),
        "syn.lr": rand(4, 3, 32, 32), "syn.hr": rand(4, 3, 32, 32), "syn.label": torch.tensor([0, 1, 5, 6]),
    }


def test_csri_branches_share_one_sr_network_and_one_backbone():
    objective = _csri()
    assert isinstance(objective.sr, VDSR)
    assert [type(m).__name__ for m in objective.modules()].count("VDSR") == 1
    own = sum(p.numel() for p in objective.parameters())
    parts = sum(p.numel() for part in (objective.sr, objective.backbone, objective.heads) for p in part.parameters())
    assert own == parts  # nothing duplicated per branch: the heads are the only per-branch modules
    assert set(objective.heads) == {"nat", "syn"}


def _gradients(objective: Objective, terms: set[str]) -> dict[str, torch.Tensor]:
    objective = copy.deepcopy(objective)  # a forward pass moves state (centres, BN statistics): same start each time
    values = objective(_batch())
    sum(v for k, v in values.items() if k.split("/")[0] in terms).backward()
    return {name: p.grad.clone() if p.grad is not None else torch.zeros_like(p)
            for name, p in objective.named_parameters() if name.startswith(("sr.", "backbone."))}


def test_both_branches_send_gradients_into_the_shared_weights():
    torch.manual_seed(0)
    objective = _csri().train()
    values = objective(_batch())
    assert set(values) == {"fr_nat/ce", "fr_nat/center", "fr_syn/ce", "fr_syn/center", "sr"}
    native = _gradients(objective, {"fr_nat"})
    synthetic = _gradients(objective, {"fr_syn", "sr"})
    both = _gradients(objective, {"fr_nat", "fr_syn", "sr"})
    for name in both:
        if name.startswith("sr.") and name.endswith("weight"):
            assert native[name].abs().sum() > 0 and synthetic[name].abs().sum() > 0, name
    first_sr = "sr.residual.0.weight"
    assert not torch.allclose(native[first_sr], synthetic[first_sr])
    assert torch.allclose(both[first_sr], native[first_sr] + synthetic[first_sr], atol=1e-6)


def test_pixel_term_is_lambda_sr_times_the_per_image_squared_error():
    objective = _csri().train()
    batch = _batch()
    values = objective(batch)
    restored = objective.super_resolve(batch["syn.lr"])
    expected = LAMBDA_SR * (restored - batch["syn.hr"]).square().flatten(1).sum(1).mean()
    assert values["sr"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_step1_trains_the_synthetic_branch_only_and_step2_needs_its_run():
    objective = _csri(step=1)
    assert set(objective.heads) == {"syn"}
    with pytest.raises(ValueError, match="step-1 run"):
        csri_config("csri", 2, SETTING, Schedule())
    step2 = csri_config("csri", 2, SETTING, Schedule(), pretrained="/runs/step1")
    assert step2.model.pretrained_modules == ["backbone", "sr", "heads.syn"]
    assert list(step2.data) == ["nat", "syn"]  # the native stream sets the epoch


def test_sr_then_fr_fine_tuning_freezes_the_sr_network():
    config = finetune_config("sr-fr", "centerface", SETTING, Schedule(), sr="vdsr", sr_kwargs=SMALL_SR,
                             pretrained_sr="/runs/vdsr")
    assert config.model.freeze == ["sr"] and config.model.terms[0].kwargs["super_resolve"]
    config.model.pretrained = config.model.pretrained_sr = None
    objective = build_objective(config.model, {"nat": 5}).train()
    assert all(not p.requires_grad for p in objective.sr.parameters())
    assert not objective.sr.training
    with pytest.raises(ValueError, match="pretrained_sr"):
        finetune_config("sr-fr", "centerface", SETTING, Schedule(), sr="vdsr")


def test_sr_config_builds_a_model_without_backbone_that_trains_on_pairs():
    config = sr_config("vdsr", "vdsr", SETTING, Schedule(), sr_kwargs=SMALL_SR, patch=16)
    objective = build_objective(config.model)
    assert objective.backbone is None and len(objective.heads) == 0
    batch = {"syn.lr": torch.zeros(2, 3, 16, 16), "syn.hr": torch.ones(2, 3, 16, 16)}
    assert set(objective(batch)) == {"pixel"}
    with pytest.raises(ValueError, match="no backbone"):
        objective.recognizer()


def _write_data(root):
    from tests.fixtures_data import write_image

    for identity in range(4):
        for n in range(3):
            write_image(root / "hr" / f"{identity:03d}" / f"{n}.jpg", 32, 32, seed=10 * identity + n)
            write_image(root / "tinyface" / "Training_Set" / f"{identity}" / f"{identity}_{n}.jpg", 12, 12, seed=99 + n)


@pytest.mark.slow
def test_every_stage_trains_from_the_previous_runs(tmp_path):
    from lrfr.experiments.workflow import load_model
    from lrfr.training import ExperimentConfig, run_experiment
    from lrfr.training.config import DataSpec, ModelSpec, TrainConfig

    _write_data(tmp_path)
    tiny = {"widths": [8, 8, 8], "blocks": [1, 1, 1]}
    pretrain = ExperimentConfig(
        name="pretrain", train=TrainConfig(epochs=1, batch_size=4, progress=False),
        model=ModelSpec(backbone="quick", backbone_kwargs={"input_size": 32, "embedding_size": 16, **tiny}),
        data={"main": DataSpec("folder", {"root": str(tmp_path / "hr"), "input_size": 32})},
    )
    results = tmp_path / "results"
    run_experiment(pretrain, results)
    setting = Setting(data_root=str(tmp_path), pretrained=str(results / "pretrain"), input_size=32, embedding_size=16,
                      backbone_kwargs=tiny, lr_sizes=(8, 12))
    schedule = Schedule(epochs=1, batch_size=4, lr=0.01)
    runs = {}
    for config in (
        sr_config("vdsr", "vdsr", setting, schedule, sr_kwargs=SMALL_SR, patch=16),
        csri_config("csri1", 1, setting, schedule, sr_kwargs=SMALL_SR),
    ):
        config.train.progress = False
        runs[config.name], _ = run_experiment(config, results)
    for config in (
        csri_config("csri2", 2, setting, schedule, sr_kwargs=SMALL_SR, pretrained=str(runs["csri1"].path)),
        finetune_config("vdsr-fr", "centerface", setting, schedule, sr="vdsr", sr_kwargs=SMALL_SR,
                        pretrained_sr=str(runs["vdsr"].path)),
    ):
        config.train.progress = False
        runs[config.name], objective = run_experiment(config, results)
        assert objective.recognizer().eval()(torch.zeros(2, 3, 12, 12)).shape == (2, 16)
    reloaded = load_model(runs["vdsr-fr"].path).recognizer()  # a softmax-type head (CentreFace) reloads too
    assert torch.equal(reloaded(torch.ones(1, 3, 12, 12)), objective.eval().recognizer()(torch.ones(1, 3, 12, 12)))
    sr_weights, _ = runs["vdsr"].load_checkpoint()
    fr_weights, _ = runs["vdsr-fr"].load_checkpoint()
    assert torch.equal(sr_weights["sr.residual.0.weight"], fr_weights["sr.residual.0.weight"])  # frozen SR
    step1, _ = runs["csri1"].load_checkpoint()
    step2, _ = runs["csri2"].load_checkpoint()
    assert not torch.equal(step1["sr.residual.0.weight"], step2["sr.residual.0.weight"])  # step 2 trains the SR
    assert runs["csri2"].metrics()["train_history"][0]["fr_nat/ce"] > 0


def test_identify_gives_each_probes_first_mate_rank_and_average_precision():
    from lrfr.experiments.cheng2018 import identify

    gallery = torch.eye(4).numpy()  # labels 0, 1, -1 (distractor), 1
    probes = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.2, 0.9, 0.1], [0.0, 0.0, 0.0, 1.0]]).numpy()
    probes = probes / (probes**2).sum(1, keepdims=True) ** 0.5
    result = identify(probes, gallery, [0, 1, 1], [0, 1, -1, 1])
    assert result.first_ranks.tolist() == [1, 2, 1]  # probe 1 ranks the distractor first, then its mate
    # probe 1: mates at ranks 2 and 3 -> AP (1/2 + 2/3) / 2; probe 2: mates at ranks 1 and 3 (1/1 + 2/3) / 2
    assert result.average_precision.tolist() == pytest.approx([1.0, (1 / 2 + 2 / 3) / 2, (1 + 2 / 3) / 2])
    assert result.cmc(1) == pytest.approx(200 / 3)


def test_bicubic_fidelity_and_test_embeddings_with_sr_faces_in_the_run_folder(tmp_path):
    from lrfr.data import FaceDataset
    from lrfr.data.degrade import synthetic_lr
    from lrfr.data.loaders import load_folder
    from lrfr.experiments.cheng2018 import embed_test, fidelity, save_super_resolved, save_test_embeddings, synthetic_test
    from lrfr.models import build_backbone
    from lrfr.models.sr import SRThenFR
    from lrfr.protocols.fidelity import psnr
    from lrfr.runs import RunFolder

    _write_data(tmp_path)
    records = load_folder(tmp_path / "hr").records
    measured = fidelity(None, records, 32, 8)
    hr = torch.stack([FaceDataset(records, 32)[i]["image"] for i in range(len(records))])
    assert measured.psnr == pytest.approx(psnr(synthetic_lr(hr, 8, upsample_to=32), hr).numpy(), abs=1e-4)
    assert measured.labels.tolist() == [r.label for r in records]
    test = synthetic_test(records)
    assert (len(test.probe), len(test.gallery)) == (4, 8)  # 3 images per identity: 1 probe (half, rounded down), 2 gallery
    pipeline = SRThenFR(VDSR(depth=3, channels=4), build_backbone("quick", input_size=32, embedding_size=8)).eval()
    embedded = embed_test(pipeline, test, 32)
    run = RunFolder.create(tmp_path / "runs", "sr-run", {}, seed=0)
    written = save_super_resolved(run, pipeline, embedded.records, 32, [0, 2])
    save_test_embeddings(run, embedded, super_resolved=written)
    stored = run.load_embeddings("tinyface")
    assert stored.metadata["sr_path"][0].endswith("000000.png") and stored.metadata["sr_path"][1] == ""
    assert set(stored.metadata["split"]) == {"probe", "gallery"} and stored.embeddings.shape == (12, 8)


def _identified(hits: list[bool], labels: list[int]):
    """An identification where probe i's first mate is at rank 1 (hit) or rank 30, with AP 1 or 0."""
    import numpy as np

    from lrfr.protocols.identification import Identification

    return Identification(np.array(labels), np.where(hits, 1, 30), np.array(hits, dtype=float))


def test_claims_are_paired_rank1_differences_between_the_papers_rows():
    from lrfr.experiments.cheng2018 import CSRI, JOINT, decide_claims, paired_effects, sr_then_fr_row
    from lrfr.stats import Bootstrap

    labels = [0, 0, 1, 1, 2, 2, 3, 3]
    rows = {"CentreFace": [1, 0, 1, 0, 1, 0, 1, 0], CSRI: [1] * 8, JOINT: [1, 1, 1, 0, 1, 1, 1, 0],
            "CentreFace + VDSR": [1, 0, 1, 0, 1, 0, 1, 0], "CentreFace (not re-trained) + SRCNN": [0] * 8}
    results = {name: _identified([bool(h) for h in hits], labels) for name, hits in rows.items()}
    boot = Bootstrap(labels, resamples=200, seed=0)
    assert sr_then_fr_row("vdsr", ["vdsr"]) == "CentreFace + VDSR"
    decided = {r.claim.id: r for r in decide_claims(results, boot, ["srcnn", "vdsr"], ["vdsr"])}
    names = {"cheng2018.sr_then_fr_srcnn", "cheng2018.sr_then_fr_vdsr", "cheng2018.csri_beats_centreface",
             "cheng2018.csri_beats_sr_then_fr", "cheng2018.joint_beats_independent", "cheng2018.joint_beats_fr_only",
             "cheng2018.complement_sr"}
    assert set(decided) == names | {f"{name}_rank20" for name in names}  # each at rank 1 and rank 20
    ranked = {k: r for k, r in decided.items() if k.endswith("_rank20")}
    assert all(r.claim.metric == "Rank-20 (%)" for r in ranked.values())
    # CSRI hits every probe, CentreFace every other one: +50 points, every resample +50 (each identity 1 of 2)
    csri = decided["cheng2018.csri_beats_centreface"]
    assert (csri.estimate.value, csri.estimate.low, csri.estimate.high) == pytest.approx((50.0, 50.0, 50.0))
    assert csri.verdict == "reproduced" and csri.parts["CentreFace"].value == pytest.approx(50.0)
    assert decided["cheng2018.sr_then_fr_srcnn"].verdict == "reproduced"  # -50 everywhere, the paper says "less"
    vdsr = decided["cheng2018.sr_then_fr_vdsr"]  # identical rows: exactly 0, a zero-width interval
    assert (vdsr.estimate.value, vdsr.estimate.low, vdsr.estimate.high) == (0.0, 0.0, 0.0) and vdsr.verdict == "inconclusive"
    assert "±0.0 points" in vdsr.note and "(CentreFace + VDSR 50.0 and CentreFace 50.0)" in vdsr.note and csri.note == ""
    assert decided["cheng2018.complement_sr"].estimate.value == pytest.approx(25.0)
    # misses sit at rank 30, so rank 20 counts the same hits as rank 1
    assert decided["cheng2018.complement_sr_rank20"].estimate.value == pytest.approx(25.0)
    effects = paired_effects(results, boot, {"without CSR": JOINT, "with CSR": CSRI}, "without CSR")
    assert set(effects) == {("with CSR", "TinyFace", m) for m in ("Rank-1", "Rank-20", "Rank-50", "mAP")}
    assert effects[("with CSR", "TinyFace", "Rank-1")].value == pytest.approx(25.0)
    assert effects[("with CSR", "TinyFace", "Rank-20")].value == pytest.approx(25.0)  # misses sit at rank 30
    assert effects[("with CSR", "TinyFace", "Rank-50")].value == pytest.approx(0.0)


def test_native_vs_synthetic_is_an_independent_difference_of_two_test_sets():
    from lrfr.experiments.cheng2018 import native_vs_synthetic_claim

    synthetic = _identified([True, True, True, False], [0, 0, 1, 1])
    native = _identified([True, False, False, False, False, False], [5, 5, 6, 6, 7, 7])
    result = native_vs_synthetic_claim("CentreFace", synthetic, native, resamples=200, seed=0)
    assert result.claim.id == "cheng2018.native_harder_finetuned"
    assert result.estimate.value == pytest.approx(75.0 - 100 / 6)
    assert result.parts["CentreFace (SynLR)"].value == pytest.approx(75.0)
    assert result.estimate.units == 5  # 2 synthetic + 3 native identities, resampled separately
    at20 = native_vs_synthetic_claim("CentreFace", synthetic, native, resamples=200, seed=0, metric="Rank-20")
    assert at20.claim.id == "cheng2018.native_harder_finetuned_rank20" and at20.estimate.value == pytest.approx(75.0 - 100 / 6)


def test_imprinted_stages_start_from_their_sources_and_the_later_runs_follow_them(tmp_path):
    from lrfr.experiments.cheng2018 import ChapterPlan, chapter_configs, run_path

    plan = ChapterPlan(table3_rows=("CentreFace", "SphereFace"), sr_networks={"vdsr": SMALL_SR}, sr_finetuned=("vdsr",),
                       csri_sr_from_vdsr=True, imprint=True)
    stages = chapter_configs(SETTING, plan, tmp_path)
    assert stages["fr-SphereFace"].start is None  # A-Softmax has no linear classifier to imprint
    assert stages["sr-vdsr"].start is None and stages["sr-vdsr"].config.model.heads == {}
    step1 = stages["csri-1"]
    assert step1.heads == ("syn",) and step1.start.model.pretrained_sr == run_path(stages["sr-vdsr"], tmp_path)
    assert step1.config.model.pretrained.startswith(str(tmp_path / "c4-csri-step1-start-"))
    assert step1.config.model.pretrained_modules == ["backbone", "heads.syn", "sr"] and step1.config.model.pretrained_sr is None
    for role in ("joint", "csri-2"):  # both start from the imprinted step-1 run, with the native head imprinted
        assert stages[role].heads == ("nat",) and stages[role].start.model.pretrained == run_path(step1, tmp_path)
    assert stages["csri-2"].config.model.pretrained_modules == ["backbone", "heads.nat", "heads.syn", "sr"]
    assert stages["fr-CentreFace"].config.model.pretrained_modules == ["backbone", "heads.nat"]
    plain = chapter_configs(SETTING, ChapterPlan(sr_networks={"vdsr": SMALL_SR}), tmp_path)
    assert plain["csri-2"].start is None and plain["csri-2"].config.model.pretrained == run_path(plain["csri-1"], tmp_path)
    assert not list(tmp_path.iterdir())  # planning writes nothing

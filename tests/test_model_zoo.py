"""The model zoo: every public model as an Embedder with its publisher's input spec; `lrfr embed`,
`lrfr eval` and `lrfr data align` on real files (dlib's model, checkpoints written in the publishers'
layouts), and the run folders they write opening in the dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lrfr.cli import main
from lrfr.data.base import to_tensor
from lrfr.data.synthetic import SynthFace
from lrfr.models.embedder import BackboneEmbedder, InputSpec
from lrfr.models.pretrained.zoo import ADAFACE_FAMILY, INSIGHTFACE_FAMILY, ZOO, backbone_weights, build_embedder, zoo_table
from lrfr.runs import RunFolder, find_runs
from tests.test_pretrained_converters import adaface_keys, arcface_iresnet_keys, published, randomised

ROOT = Path(__file__).resolve().parents[1]

def write_faces(folder: Path, size: int, identities: int = 3, per_identity: int = 2) -> np.ndarray:
    """SynthFace renders as a folder-per-identity set of PNGs; returns the images in file order."""
    ids = np.repeat(np.arange(identities), per_identity)
    images = SynthFace(seed=5).render_hr(ids, np.tile(np.arange(per_identity), identities), size=size)
    for k, (identity, image) in enumerate(zip(ids, images)):
        (folder / f"id{identity}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"id{identity}" / f"{k}.png")
    return images


@pytest.fixture(scope="module")
def adaface_file(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    original = randomised("adaface_ir18")
    path = tmp_path_factory.mktemp("adaface") / "adaface_ir18_casia.ckpt"
    state = {f"model.{k}": v for k, v in published(original, adaface_keys((2, 2, 2, 2))).items()}
    torch.save({"state_dict": {**state, "head.kernel": torch.zeros(512, 3)}, "epoch": 1}, path)
    return path, original


def test_specs_follow_the_publishers() -> None:
    assert ADAFACE_FAMILY.spec == InputSpec(size=112, channels="BGR", mean=(127.5,) * 3, std=(127.5,) * 3, alignment="arcface")
    assert INSIGHTFACE_FAMILY.spec.channels == "RGB" and INSIGHTFACE_FAMILY.flip_fusion
    dlib = build_embedder("dlib_resnet")
    assert dlib.spec.size == (150, 150) and dlib.spec.std == (256.0,) * 3 and not dlib.flip_fusion


def test_adaface_embedder_feeds_bgr_and_insightface_rgb(adaface_file) -> None:
    """The spec, not the caller, turns lrfr's RGB [-1, 1] images into what each publisher trained on."""
    path, original = adaface_file
    images = torch.stack([to_tensor(image) for image in SynthFace(seed=1).render_hr([0, 1], [0, 0], size=112)])
    embedder = build_embedder(path)  # recognised as AdaFace IR-18 from its keys
    assert embedder.spec.channels == "BGR"
    got, _ = embedder.embed(images, flip_fusion=False)
    with torch.no_grad():
        bgr = torch.nn.functional.normalize(original(images.flip(1)), dim=1)
        rgb = torch.nn.functional.normalize(original(images), dim=1)
    torch.testing.assert_close(got, bgr, atol=1e-5, rtol=0)
    assert (got - rgb).abs().max() > 1e-2  # feeding RGB would be a different model


def test_zoo_names_need_their_weights_and_bad_names_list_the_zoo(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"adaface_ir50_ms1mv2 needs its weights file: download it from .*drive\.google"):
        build_embedder("adaface_ir50_ms1mv2")
    with pytest.raises(KeyError, match="unknown model 'resnet9000'.*dlib_resnet"):
        build_embedder("resnet9000")


def test_zoo_name_with_weights_and_pretrained_fine_tuning_start(adaface_file) -> None:
    path, original = adaface_file
    embedder = build_embedder("adaface_ir18_casia", weights=path)
    assert isinstance(embedder, BackboneEmbedder) and embedder.flip_fusion
    weights = backbone_weights(path, randomised("adaface_ir18"))
    assert all(torch.equal(weights[k], v) for k, v in original.state_dict().items())


def test_lrfr_data_align_with_dlib_lists_files_without_a_face(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("dlib", reason="dlib is not installed: pip install 'lrfr[dlib]'")
    data = pytest.importorskip("skimage.data", reason="scikit-image is not installed (it ships the photograph)")
    raw = tmp_path / "raw"
    (raw / "eileen").mkdir(parents=True)
    (raw / "nobody").mkdir()
    Image.fromarray(data.astronaut()).save(raw / "eileen" / "astronaut.png")
    Image.fromarray(np.full((120, 90, 3), 128, np.uint8)).save(raw / "nobody" / "grey.png")
    assert main(["data", "align", "--images", str(raw), "--out", str(tmp_path / "aligned"), "--template", "dlib"]) == 0
    printed = capsys.readouterr().out
    assert "1 faces aligned to the dlib template at 150 px" in printed
    assert "1 no face found, centre crop written instead:\n  nobody/grey.png" in printed
    assert Image.open(tmp_path / "aligned" / "nobody" / "grey.png").size == (150, 150)
    main(["data", "align", "--images", str(raw), "--out", str(tmp_path / "skipped"), "--template", "dlib", "--no-face", "skip"])
    report = json.loads((tmp_path / "skipped" / "alignment.json").read_text())
    assert report["no_face"] == ["nobody/grey.png"] and not (tmp_path / "skipped" / "nobody" / "grey.png").exists()
    out = tmp_path / "results" / "aligned"
    assert main(["embed", "--model", "dlib_resnet", "--images", str(tmp_path / "aligned"), "--out", str(out)]) == 0
    assert RunFolder.open(out).config["alignment"] == "dlib"


def test_model_spec_pretrained_fine_tunes_from_a_publisher_checkpoint(adaface_file) -> None:
    from lrfr.training import HeadSpec, ModelSpec, build_objective

    path, original = adaface_file
    objective = build_objective(ModelSpec(backbone="adaface_ir18", heads={"main": HeadSpec("cosface", 3)}, pretrained=str(path)))
    assert all(torch.equal(objective.backbone.state_dict()[k], v) for k, v in original.state_dict().items())


def test_the_book_page_holds_the_zoo_table() -> None:
    page = (ROOT / "book" / "model_zoo.md").read_text()
    assert zoo_table() in page
    assert "- file: book/model_zoo" in (ROOT / "_toc.yml").read_text()
    assert all(entry.sha256 is None for entry in ZOO.values())  # no publisher gives one: none is claimed


def test_lrfr_embed_writes_a_run_the_dashboard_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images = write_faces(tmp_path / "faces", size=150)
    out = tmp_path / "results" / "dlib-faces"
    assert main(["embed", "--model", "dlib_resnet", "--images", str(tmp_path / "faces"), "--out", str(out)]) == 0
    run = RunFolder.open(out)
    stored = run.load_embeddings("images")
    assert stored.embeddings.shape == (6, 128) and list(stored.labels) == [0, 0, 1, 1, 2, 2]
    assert run.config["input_spec"]["alignment"] == "dlib" and run.config["flip_fusion"] is False
    assert run.config["weights"].endswith("dlib_face_recognition_resnet_model_v1.dat") and len(run.config["weights_sha256"]) == 64
    expected, _ = build_embedder("dlib_resnet").embed(torch.stack([to_tensor(image) for image in images]))
    np.testing.assert_allclose(stored.embeddings, expected.numpy(), atol=1e-5)
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LRFR_RESULTS", str(tmp_path / "results"))
    app = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120).run()
    assert find_runs(tmp_path / "results") == [out]
    assert not app.exception and not app.error
    assert [s.value for s in app.subheader] == ["dlib-faces"]


def test_lrfr_embed_recognises_a_checkpoint_and_refuses_a_foreign_alignment(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    original = randomised("iresnet18")
    checkpoint = tmp_path / "backbone.pth"
    torch.save(published(original, arcface_iresnet_keys((2, 2, 2, 2))), checkpoint)
    write_faces(tmp_path / "faces", size=112)
    out = tmp_path / "results" / "r18"
    assert main(["embed", "--model", str(checkpoint), "--images", str(tmp_path / "faces"), "--out", str(out)]) == 0
    config = RunFolder.open(out).config
    assert config["input_spec"]["channels"] == "RGB" and config["flip_fusion"] is True
    (tmp_path / "faces" / "alignment.json").write_text(json.dumps({"template": "dlib"}))
    capsys.readouterr()
    assert main(["embed", "--model", str(checkpoint), "--images", str(tmp_path / "faces"), "--out", str(tmp_path / "again")]) == 1
    assert re.search(r"lrfr embed: ValueError: .* aligned to the 'dlib' template .* expects 'arcface'.*--template arcface", capsys.readouterr().err)
    assert not (tmp_path / "again").exists()


def test_lrfr_eval_runs_the_protocols_on_a_data_root(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "data"
    assert main(["data", "synth", "--preset", "tiny", "--out", str(root)]) == 0
    out = tmp_path / "results" / "eval"
    args = ["eval", "--model", "dlib_resnet", "--data-root", str(root), "--benchmarks", "lfw", "tinyface", "--out", str(out)]
    assert main(args) == 0
    metrics = RunFolder.open(out).metrics()
    rows = {(r["benchmark"], r["setting"], r["metric"]): r["value"] for r in metrics["rows"]}
    assert ("LFW", "10-fold", "accuracy") in rows and ("TinyFace", "with distractors", "rank-1") in rows
    assert all(0.0 <= value <= 1.0 for value in rows.values())
    assert "lfw_pairs" in RunFolder.open(out).embedding_sets()
    assert "TinyFace  with distractors" in capsys.readouterr().out

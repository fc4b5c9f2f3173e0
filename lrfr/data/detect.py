"""MTCNN face detector (Zhang et al., 2016) in plain torch, for the data scripts.

The three-stage cascade (P-Net proposals over an image pyramid, R-Net refinement, O-Net boxes and five
landmarks, with bounding-box regression and non-maximum suppression between stages) is written here
without torchvision. The weights are the Caffe-trained MTCNN weights converted to PyTorch that ship in
the ``facenet-pytorch`` wheel (``facenet_pytorch/data/{pnet,rnet,onet}.pt``, plain state dicts loaded
with ``weights_only=True``); ``pip install --no-deps facenet-pytorch`` installs them without the
package's torchvision dependency, whose code is never imported here. Nothing is downloaded at run time.

Boxes are ``(x1, y1, x2, y2)`` in continuous pixel coordinates (width ``x2 - x1``); landmarks are
``(x, y)`` of left eye, right eye, nose, left and right mouth corner, the order
:func:`lrfr.data.align.align_face` expects.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from tqdm.auto import tqdm

from lrfr.data.align import (
    IMAGE_EXTENSIONS,
    TEMPLATE_SIZE,
    Aligner,
    AlignmentReport,
    align_folder,
    centre_crop,
    landmark_aligner,
)
from lrfr.data.base import read_image
from lrfr.data.fetch.catalogue import LOADER_CHECKS
from lrfr.io import atomic_folder

WEIGHT_FILES = {"pnet": "pnet.pt", "rnet": "rnet.pt", "onet": "onet.pt"}
#: sha256 of the weight files, identical in the facenet-pytorch 2.5.3 and 2.6.0 wheels.
WEIGHT_SHA256 = {
    "pnet.pt": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet.pt": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet.pt": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
WEIGHTS_ENV = "LRFR_MTCNN_WEIGHTS"
INSTALL_HINT = (
    "install them with `pip install --no-deps facenet-pytorch` (its wheel ships "
    "facenet_pytorch/data/{pnet,rnet,onet}.pt; torchvision is not needed), or pass the folder holding "
    f"those files (argument or the {WEIGHTS_ENV} environment variable)"
)


class DetectorUnavailable(RuntimeError):
    """The MTCNN weights cannot be found; the message says how to install them."""


class CascadeNet(nn.Module):
    """One MTCNN stage: conv+PReLU layers (optional 2-stride max pooling), then 1x1-conv or dense heads.

    Parameter names follow the converted state dicts: ``conv{i}``/``prelu{i}``, then for P-Net the
    heads ``conv4_{j}``; for R-/O-Net ``dense{n}``/``prelu{n}`` and heads ``dense{n+1}_{j}``.
    """

    def __init__(self, convs: Sequence[tuple[int, int, int, int]], hidden: tuple[int, int] | None, heads: Sequence[int]):
        super().__init__()
        self.pools = [pool for *_, pool in convs]
        for i, (cin, cout, kernel, _) in enumerate(convs, 1):
            self.add_module(f"conv{i}", nn.Conv2d(cin, cout, kernel))
            self.add_module(f"prelu{i}", nn.PReLU(cout))
        n = len(convs) + 1
        self.hidden = f"dense{n}" if hidden else None
        if hidden:
            self.add_module(f"dense{n}", nn.Linear(*hidden))
            self.add_module(f"prelu{n}", nn.PReLU(hidden[1]))
        width, prefix = (hidden[1], f"dense{n + 1}_") if hidden else (convs[-1][1], f"conv{n}_")
        self.heads = [f"{prefix}{j}" for j in range(1, len(heads) + 1)]
        for name, out in zip(self.heads, heads):
            self.add_module(name, nn.Linear(width, out) if hidden else nn.Conv2d(width, out, 1))

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """Face probability, box regression (and landmarks for O-Net), in that order."""
        for i, pool in enumerate(self.pools, 1):
            x = getattr(self, f"prelu{i}")(getattr(self, f"conv{i}")(x))
            if pool:
                x = F.max_pool2d(x, pool, 2, ceil_mode=True)
        if self.hidden:
            # The converted Caffe weights expect the (W, H, C) flattening order.
            x = x.permute(0, 3, 2, 1).flatten(1)
            x = getattr(self, f"prelu{len(self.pools) + 1}")(getattr(self, self.hidden)(x))
        logits, *rest = (getattr(self, name)(x) for name in self.heads)
        return (logits.softmax(dim=1)[:, 1], *rest)


def pnet() -> CascadeNet:
    """P-Net: fully convolutional, 12x12 receptive field, stride 2."""
    return CascadeNet([(3, 10, 3, 2), (10, 16, 3, 0), (16, 32, 3, 0)], None, (2, 4))


def rnet() -> CascadeNet:
    """R-Net on 24x24 crops."""
    return CascadeNet([(3, 28, 3, 3), (28, 48, 3, 3), (48, 64, 2, 0)], (576, 128), (2, 4))


def onet() -> CascadeNet:
    """O-Net on 48x48 crops, with the 10 landmark outputs (5 x's then 5 y's, relative to the box)."""
    return CascadeNet([(3, 32, 3, 3), (32, 64, 3, 3), (64, 64, 3, 2), (64, 128, 2, 0)], (1152, 256), (2, 4, 10))


def weights_dir(path: Path | str | None = None) -> Path:
    """The folder holding the MTCNN weight files: ``path``, else ``$LRFR_MTCNN_WEIGHTS``, else the
    ``data`` folder of an installed ``facenet_pytorch`` (found without importing it)."""
    if path is None:
        path = os.environ.get(WEIGHTS_ENV)
    if path is None:
        spec = importlib.util.find_spec("facenet_pytorch")
        if spec is None or not spec.submodule_search_locations:
            raise DetectorUnavailable(f"the MTCNN weights are not installed: {INSTALL_HINT}")
        path = Path(list(spec.submodule_search_locations)[0]) / "data"
    path = Path(path)
    missing = [name for name in WEIGHT_FILES.values() if not (path / name).is_file()]
    if missing:
        raise DetectorUnavailable(f"{path} lacks the MTCNN weights {', '.join(missing)}: {INSTALL_HINT}")
    return path


def load_nets(path: Path | str | None = None, verify: bool = True) -> tuple[CascadeNet, CascadeNet, CascadeNet]:
    """P-, R- and O-Net with the weights from :func:`weights_dir` (``weights_only=True``), in eval mode.

    With ``verify`` each file must have the sha256 of the facenet-pytorch release (:data:`WEIGHT_SHA256`).
    """
    folder = weights_dir(path)
    nets = (pnet(), rnet(), onet())
    for net, filename in zip(nets, WEIGHT_FILES.values()):
        file = folder / filename
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        if verify and digest != WEIGHT_SHA256[filename]:
            raise DetectorUnavailable(
                f"{file} has sha256 {digest}, expected {WEIGHT_SHA256[filename]} (facenet-pytorch's MTCNN weights): "
                f"{INSTALL_HINT}; or pass verify=False to use other weights"
            )
        net.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
        net.eval()
    return nets


def pyramid_scales(height: int, width: int, min_face_size: float = 20.0, factor: float = 0.709) -> list[float]:
    """Scales at which P-Net's 12-pixel window covers faces from ``min_face_size`` up to the image size."""
    if min_face_size <= 0 or not 0 < factor < 1:
        raise ValueError(f"need min_face_size > 0 and 0 < factor < 1, got {min_face_size} and {factor}")
    scale = 12.0 / min_face_size
    scales = []
    while min(height, width) * scale >= 12:
        scales.append(scale)
        scale *= factor
    return scales


def nms(boxes: Tensor, scores: Tensor, threshold: float, mode: str = "union") -> Tensor:
    """Indices kept by greedy non-maximum suppression, best score first.

    A box is dropped when its overlap with a kept box exceeds ``threshold``: intersection over union
    (``mode="union"``) or over the smaller area (``mode="min"``, O-Net's last step).
    """
    if mode not in ("union", "min"):
        raise ValueError(f"nms mode must be 'union' or 'min', got {mode!r}")
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = scores.argsort(descending=True)
    keep = []
    while order.numel():
        best, rest = order[0], order[1:]
        keep.append(best)
        width = (torch.minimum(x2[best], x2[rest]) - torch.maximum(x1[best], x1[rest])).clamp(min=0)
        height = (torch.minimum(y2[best], y2[rest]) - torch.maximum(y1[best], y1[rest])).clamp(min=0)
        inter = width * height
        base = areas[best] + areas[rest] - inter if mode == "union" else torch.minimum(areas[best], areas[rest])
        order = rest[inter / base.clamp(min=1e-12) <= threshold]
    return torch.stack(keep) if keep else torch.zeros(0, dtype=torch.long)


def regress(boxes: Tensor, offsets: Tensor) -> Tensor:
    """Apply box regression: each corner moves by its offset times the box width/height."""
    size = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + offsets * size


def square(boxes: Tensor) -> Tensor:
    """The squares of side ``max(width, height)`` centred on ``boxes``."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).max(dim=1, keepdim=True).values / 2
    return torch.cat([centre - half, centre + half], dim=1)


def proposals(prob: Tensor, offsets: Tensor, scale: float, threshold: float) -> tuple[Tensor, Tensor]:
    """P-Net output at one pyramid scale -> boxes ``(K, 4)`` in image coordinates and their scores.

    Cell ``(i, j)`` of the ``(H, W)`` map is the 12x12 window at ``(2j, 2i)`` of the scaled image;
    ``offsets`` ``(4, H, W)`` are the regressions, applied later (after NMS).
    """
    rows, cols = torch.nonzero(prob >= threshold, as_tuple=True)
    corner = torch.stack([cols, rows], dim=1).to(prob.dtype) * 2
    boxes = torch.cat([corner, corner + 12], dim=1) / scale
    return torch.cat([boxes, offsets[:, rows, cols].T], dim=1), prob[rows, cols]


def window(image: Tensor, x1: int, y1: int, x2: int, y2: int) -> Tensor:
    """The ``(3, y2 - y1, x2 - x1)`` window of a ``(3, H, W)`` image at integer corners, zero outside it."""
    _, height, width = image.shape
    x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
    patch = image.new_zeros(3, y2 - y1, x2 - x1)
    sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
    if sx2 > sx1 and sy2 > sy1:
        patch[:, sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = image[:, sy1:sy2, sx1:sx2]
    return patch


def crops(image: Tensor, boxes: Tensor, size: int) -> Tensor:
    """``(K, 3, size, size)`` crops of a ``(3, H, W)`` image at integer-rounded ``boxes``, zero outside it."""
    out = [F.interpolate(window(image, *box)[None], size=(size, size), mode="area") for box in boxes.round().long().tolist()]
    return torch.cat(out) if out else image.new_zeros(0, 3, size, size)


def normalise(pixels: Tensor) -> Tensor:
    """uint8-range pixels -> MTCNN's input range, ``(x - 127.5) / 128``."""
    return (pixels - 127.5) / 128.0


@dataclass(frozen=True)
class Face:
    """One detection: ``box`` (x1, y1, x2, y2), face probability ``score``, ``landmarks`` (5, 2)."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray


class MTCNN:
    """The cascade; ``nets`` (P, R, O) default to :func:`load_nets` (the facenet-pytorch wheel's weights)."""

    def __init__(
        self,
        nets: tuple[CascadeNet, CascadeNet, CascadeNet] | None = None,
        min_face_size: float = 20.0,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
    ):
        self.pnet, self.rnet, self.onet = nets if nets is not None else load_nets()
        self.min_face_size, self.thresholds, self.factor = min_face_size, thresholds, factor

    def _stage1(self, image: Tensor) -> Tensor:
        """Square candidate boxes ``(K, 4)`` from P-Net over the pyramid."""
        _, height, width = image.shape
        found, scores = [], []
        for scale in pyramid_scales(height, width, self.min_face_size, self.factor):
            size = (math.ceil(height * scale), math.ceil(width * scale))
            prob, offsets = self.pnet(normalise(F.interpolate(image[None], size=size, mode="area")))
            boxes, score = proposals(prob[0], offsets[0], scale, self.thresholds[0])
            keep = nms(boxes[:, :4], score, 0.5)
            found.append(boxes[keep])
            scores.append(score[keep])
        if not found:  # the image is smaller than min_face_size
            return image.new_zeros(0, 4)
        boxes, score = torch.cat(found), torch.cat(scores)
        boxes = boxes[nms(boxes[:, :4], score, 0.7)]
        return square(regress(boxes[:, :4], boxes[:, 4:]))

    def _stage2(self, image: Tensor, boxes: Tensor) -> Tensor:
        """R-Net: keep confident boxes, suppress overlaps, regress and square them."""
        prob, offsets = self.rnet(normalise(crops(image, boxes, 24)))
        passed = prob > self.thresholds[1]
        boxes, prob, offsets = boxes[passed], prob[passed], offsets[passed]
        keep = nms(boxes, prob, 0.7)
        return square(regress(boxes[keep], offsets[keep]))

    def _stage3(self, image: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """O-Net: final boxes, scores and landmarks (read relative to the box before regression)."""
        prob, offsets, marks = self.onet(normalise(crops(image, boxes, 48)))
        passed = prob > self.thresholds[2]
        boxes, prob, offsets, marks = boxes[passed], prob[passed], offsets[passed], marks[passed]
        size = boxes[:, 2:] - boxes[:, :2]
        points = torch.stack([marks[:, :5], marks[:, 5:]], dim=2) * size[:, None] + boxes[:, None, :2]
        boxes = regress(boxes, offsets)
        keep = nms(boxes, prob, 0.7, mode="min")
        return boxes[keep], prob[keep], points[keep]

    @torch.no_grad()
    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an ``(H, W, 3)`` uint8 RGB image, best score first."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be an (H, W, 3) uint8 array, got shape {image.shape} and dtype {image.dtype}")
        pixels = torch.tensor(image).permute(2, 0, 1).float()
        boxes = self._stage1(pixels)
        if len(boxes):
            boxes = self._stage2(pixels, boxes)
        if not len(boxes):
            return []
        boxes, scores, points = self._stage3(pixels, boxes)
        return [Face(b.numpy(), float(s), p.numpy()) for b, s, p in zip(boxes, scores, points)]

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        """The ``(5, 2)`` landmarks of the most confident face, or None; fits :func:`lrfr.data.align.landmark_aligner`."""
        faces = self.detect(image)
        return faces[0].landmarks if faces else None


def box_crop(image: np.ndarray, box: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The pixels of ``box`` (x1, y1, x2, y2) enlarged ``scale`` times about its centre, at native
    resolution (zero outside the image), ``(h, w, 3)`` uint8."""
    box = np.asarray(box, np.float64)
    centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) * scale / 2
    corners = np.round(np.concatenate([centre - half, centre + half])).astype(int).tolist()
    return window(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1), *corners).permute(1, 2, 0).numpy()


def face_crop(image: np.ndarray, face: Face) -> np.ndarray:
    """The square around ``face``'s box at native resolution (zero outside the image), ``(s, s, 3)`` uint8."""
    return box_crop(image, square(torch.from_numpy(face.box)[None].double())[0].numpy())


def box_cropper(detector: MTCNN, scale: float) -> Aligner:
    """The most confident face's detector box enlarged ``scale`` times, at native resolution (None: no face)."""

    def crop(image: np.ndarray) -> np.ndarray | None:
        faces = detector.detect(image)
        return box_crop(image, faces[0].box, scale) if faces else None

    return crop


def extract_faces(sources: Mapping[str, Path], dst: Path, detector: MTCNN, every: int = 1, limit: int | None = None) -> int:
    """Write the most confident face of every ``every``-th image under each source folder into ``dst``.

    ``sources`` maps a tag (``"lpw"``, ``"mars"``) to a folder searched recursively; a face is saved as
    ``<tag>__<relative path with / as __>.png``, a square crop at native resolution, in one flat folder
    (the layout :func:`lrfr.data.loaders.load_unlabelled` reads) written atomically. ``limit`` caps the
    number of faces. Returns the number written.
    """
    if every < 1:
        raise ValueError(f"every must be a positive step, got {every}")
    images = []
    for tag, folder in sources.items():
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{tag}: {folder} is not a folder of person images")
        found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        images += [(tag, folder, path) for path in found[::every]]
    written = 0
    with atomic_folder(dst) as work:
        for tag, folder, path in tqdm(images, desc="detecting faces", unit="image"):
            image = read_image(path)
            faces = detector.detect(image)
            if faces:
                name = "__".join((tag, *path.relative_to(folder).with_suffix("").parts))
                Image.fromarray(face_crop(image, faces[0])).save(work / f"{name}.png")
                written += 1
            if limit is not None and written >= limit:
                break
    return written


def align_dataset(src: Path, dst: Path, detector: MTCNN, fallback_fraction: float = 0.6) -> AlignmentReport:
    """Align every image under ``src`` into ``dst`` with ``detector``'s landmarks (atomic; other files copied).

    An image without a detected face is aligned as a centre crop (:func:`centre_crop` with
    ``fallback_fraction``; right for LFW-style centred crops), so a pair list still finds every image;
    the report lists those files.
    """
    return align_folder(src, dst, landmark_aligner(detector.landmarks), fallback=centre_crop(TEMPLATE_SIZE, fallback_fraction))


def add_align_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--align``/``--weights``/``--min-face-size`` options of the data scripts that align."""
    parser.add_argument("--align", action="store_true", help="also write the 112x112 ArcFace-aligned copy <folder>_112")
    parser.add_argument("--weights", type=Path, help="folder with pnet.pt, rnet.pt, onet.pt (default: installed facenet-pytorch)")
    parser.add_argument("--min-face-size", type=float, default=20.0, help="smallest face the detector searches, pixels")


def crop_dataset(src: Path, dst: Path, detector: MTCNN, scale: float) -> AlignmentReport:
    """Every image under ``src`` as its most confident face's box enlarged ``scale`` times, at native
    resolution, into ``dst`` (atomic; other files copied; an image without a face is left out and listed)."""
    return align_folder(src, dst, box_cropper(detector, scale), template=f"MTCNN box x{scale:g}", size=None)


def detector_of(args: argparse.Namespace) -> MTCNN:
    """The MTCNN of a data script's ``--weights``/``--min-face-size``; a missing detector exits with the install instructions."""
    try:
        return MTCNN(load_nets(args.weights), min_face_size=args.min_face_size)
    except DetectorUnavailable as error:
        raise SystemExit(f"error: {error}") from None


def align_prepared(dataset: str, root: Path, args: argparse.Namespace) -> Path | None:
    """With ``args.align``, write ``<root>_112`` aligned by MTCNN and check it with ``dataset``'s loader.

    A missing detector exits with the install instructions; returns the aligned folder (None without ``--align``).
    """
    if not args.align:
        return None
    folder = root.with_name(f"{root.name}_112")
    return checked_copy(dataset, folder, align_dataset(root, folder, detector_of(args)))


def enlargement(text: str) -> float:
    """A box enlargement factor from the command line: a number of at least 1."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a factor of at least 1 (the box enlarged), e.g. 1.3")
    return value


def add_crop_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--crop-scale`` option (with the detector options of :func:`add_align_arguments`)."""
    parser.add_argument("--crop-scale", type=enlargement, help="also write <folder>_mtcnn<100 x SCALE>: each image's MTCNN box "
                        "enlarged SCALE times about its centre, at native resolution (Grm et al. 2023: 1.3)")


def crop_prepared(dataset: str, root: Path, args: argparse.Namespace) -> Path | None:
    """With ``args.crop_scale``, write ``<root>_mtcnn<100 x scale>`` (:func:`crop_dataset`) and check it
    with ``dataset``'s loader; returns that folder (None without ``--crop-scale``)."""
    if args.crop_scale is None:
        return None
    folder = root.with_name(f"{root.name}_mtcnn{round(100 * args.crop_scale)}")
    return checked_copy(dataset, folder, crop_dataset(root, folder, detector_of(args), args.crop_scale))


def checked_copy(dataset: str, folder: Path, report: AlignmentReport) -> Path:
    """``folder``, written with ``report``, after ``dataset``'s loader has read it; prints the report."""
    LOADER_CHECKS[dataset](folder)
    print(f"{report.template} copy ready in {folder}\n{report.summary()}")
    return folder

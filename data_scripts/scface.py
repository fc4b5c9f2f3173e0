"""Prepare SCface (Grgic, Delac & Grgic, 2011) into DATA_ROOT/scface from the archive(s) you received.

Unpacks the archive(s) atomically (several archives merge into one folder) and checks the result with
the SCface loader: mugshot_frontal_cropped_all/ and surveillance_cameras_distance_{1,2,3}/cam<k>/.
--align also writes DATA_ROOT/scface_112, every image aligned to the ArcFace template with MTCNN
(weights from `pip install --no-deps facenet-pytorch`); an image without a detected face is
centre-cropped, and the count is printed.
--crop-scale 1.3 also writes DATA_ROOT/scface_mtcnn130, the crops of Grm et al. (2023, Sec. 4.1): each
image's most confident MTCNN box enlarged 1.3 times about its centre, at native resolution (about 22 x 29
px at d1); images without a detected face are left out and listed. Chapter 5's full mode reads them
(its `scface_folder`).
"""

from lrfr.data.detect import add_align_arguments, add_crop_arguments, align_prepared, crop_prepared
from lrfr.data.fetch.prepare import parser, run

if __name__ == "__main__":
    arguments = parser("scface", __doc__)
    add_align_arguments(arguments)
    add_crop_arguments(arguments)
    args = arguments.parse_args()
    root = run("scface", args)
    align_prepared("scface", root, args)
    crop_prepared("scface", root, args)

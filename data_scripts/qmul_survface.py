"""Prepare QMUL-SurvFace (Cheng et al., 2018) into DATA_ROOT/survface from the archive you received.

Unpacks it atomically (stripping its QMUL-SurvFace/ top folder) and checks training_set/,
Face_Verification_Test_Set/ and Face_Identification_Test_Set/ with the SurvFace loaders.
"""

from lrfr.data.fetch.prepare import parser, run

if __name__ == "__main__":
    run("qmul_survface", parser("qmul_survface", __doc__).parse_args())

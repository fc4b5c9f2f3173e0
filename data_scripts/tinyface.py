"""Prepare TinyFace (Cheng, Zhu & Gong, ACCV 2018) into DATA_ROOT/tinyface.

Verifies tinyface.zip (md5 published), unpacks it atomically and checks it with the TinyFace loaders.
The images are native low-resolution face crops and are used unaligned.
"""

from lrfr.data.fetch.prepare import parser, run

if __name__ == "__main__":
    run("tinyface", parser("tinyface", __doc__).parse_args())

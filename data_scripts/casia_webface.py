"""Prepare CASIA-WebFace (Yi et al., 2014) into DATA_ROOT/casia_webface from the archive you received.

Unpacks it atomically into one folder per identity (stripping a single top folder such as
CASIA-WebFace/) and checks it with the folder loader.
"""

from lrfr.data.fetch.prepare import parser, run

if __name__ == "__main__":
    run("casia_webface", parser("casia_webface", __doc__).parse_args())

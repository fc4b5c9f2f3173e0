"""Download (or take) XQLFW (Knoche, Hoermann & Rigoll, 2021) into DATA_ROOT/xqlfw.

Fetches xqlfw_aligned_112.zip (already aligned to 112x112) and xqlfw_pairs.txt with resumable
downloads, unpacks atomically and checks the pairs with the LFW-format loader. No checksum is
published: the first run prints the sha256 values and needs --accept-unverified.
"""

from lrfr.data.fetch.prepare import parser, run

if __name__ == "__main__":
    run("xqlfw", parser("xqlfw", __doc__).parse_args())

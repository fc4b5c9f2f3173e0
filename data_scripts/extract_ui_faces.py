"""Build the unrecognizable-identities (UI) set of Chai et al. (CVPR 2023) from person re-id crops.

As in the paper, the MTCNN face detector runs over the person images of LPW (Song et al., 2018) and
MARS (Zheng et al., 2016); the faces it finds, mostly far too small or blurred to recognise, form an
unlabelled set. Each image's most confident face is saved as a square crop at native resolution into
one flat folder (DATA_ROOT/ui by default) that the `ui` loader reads; the folder appears only when
complete. Obtain LPW and MARS from their authors and pass their image folders.

The detector needs the MTCNN weights: `pip install --no-deps facenet-pytorch` (only its weight files
are used; torchvision is not needed), or --weights FOLDER with pnet.pt, rnet.pt, onet.pt.
"""

import argparse
from pathlib import Path

from lrfr.data.detect import MTCNN, DetectorUnavailable, extract_faces, load_nets
from lrfr.data.loaders import load_unlabelled


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lpw", type=Path, help="LPW image folder (searched recursively)")
    parser.add_argument("--mars", type=Path, help="MARS image folder, e.g. bbox_train (searched recursively)")
    parser.add_argument("--out", type=Path, required=True, help="the UI folder to create (must not exist)")
    parser.add_argument("--weights", type=Path, help="folder with pnet.pt, rnet.pt, onet.pt (default: installed facenet-pytorch)")
    parser.add_argument("--min-face-size", type=float, default=12.0, help="smallest face searched, pixels (P-Net's 12 by default)")
    parser.add_argument("--every", type=int, default=1, help="use every N-th frame (consecutive re-id frames are near duplicates)")
    parser.add_argument("--limit", type=int, help="stop after this many faces")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    sources = {tag: folder for tag, folder in (("lpw", args.lpw), ("mars", args.mars)) if folder is not None}
    if not sources:
        raise SystemExit("error: pass --lpw and/or --mars with the person image folders")
    try:
        detector = MTCNN(load_nets(args.weights), min_face_size=args.min_face_size)
    except DetectorUnavailable as error:
        raise SystemExit(f"error: {error}") from None
    written = extract_faces(sources, args.out, detector, every=args.every, limit=args.limit)
    load_unlabelled(args.out, verify=False)
    print(f"UI set ready in {args.out}: {written} faces")


if __name__ == "__main__":
    main()

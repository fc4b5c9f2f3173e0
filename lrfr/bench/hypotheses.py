"""``lrfr bench hypotheses``: throughput of Grm et al.'s (2023) hypothesis templates on the CPU.

SynthFace faces written as PNGs to a temporary folder (probes bicubic-down-sampled to ``--probe-size``,
gallery at 112 px), then: probe hypotheses (blur, EDSR at x``--scale``, embed; Sec. 3.3), gallery
hypotheses (degradation chain, RM, embed; Sec. 3.2) and the fused probe x gallery scores (Sec. 3.4) from
the cached templates. Weights are random (throughput does not depend on them). One JSON line each.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lrfr.bench import BENCHMARKS, emit
from lrfr.bench.train import cpu_name
from lrfr.data.base import FaceRecord
from lrfr.data.degrade import resize
from lrfr.data.synthetic import SynthFace
from lrfr.experiments.grm2023 import sample_chains
from lrfr.models import build_backbone
from lrfr.models.sr import EDSR
from lrfr.protocols.fusion import Fusion, fused_scores
from lrfr.protocols.hypotheses import GalleryHypotheses, ProbeHypotheses, gallery_templates, paper_sigmas, probe_templates


def write_faces(folder: Path, count: int, size: int, seed: int) -> list[FaceRecord]:
    """``count`` SynthFace faces (one per identity) at ``size`` px as PNG records labelled 0..count-1."""
    faces = resize(SynthFace(seed=seed).render_hr(np.arange(count), np.zeros(count, dtype=int)), size)
    records = []
    for i, face in enumerate(faces):
        path = folder / f"{size}_{i:05d}.png"
        Image.fromarray(face).save(path)
        records.append(FaceRecord(path, i, str(i), "test"))
    return records


def measure(args: argparse.Namespace) -> list[dict]:
    torch.manual_seed(args.seed)
    backbone = build_backbone("quick", input_size=args.input_size, embedding_size=128).eval()
    sr = EDSR(scale=args.scale, blocks=args.sr_blocks, channels=args.sr_channels).eval()
    sigmas, chain_list = paper_sigmas(args.hypotheses), sample_chains(args.chains, args.seed)
    common = {"bench": "hypotheses", "device": "cpu", "device_name": cpu_name(), "threads": torch.get_num_threads(),
              "model": f"quick backbone {args.input_size} px (random weights)", "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory() as folder:
        probes = write_faces(Path(folder), args.probes, args.probe_size, args.seed)
        gallery = write_faces(Path(folder), args.gallery, 112, args.seed + 1)
        started = time.perf_counter()
        probe_t = probe_templates(backbone, ProbeHypotheses(probes, sigmas), sr, batch_size=args.batch_size, progress=False)
        probe_s = time.perf_counter() - started
        target = (args.probe_size * args.scale,) * 2
        started = time.perf_counter()
        gallery_t = gallery_templates(backbone, GalleryHypotheses(gallery, chain_list, target, args.seed),
                                      batch_size=args.batch_size, progress=False)
        gallery_s = time.perf_counter() - started
    started = time.perf_counter()
    fused_scores(probe_t[:, None], gallery_t[:, None], Fusion("S_max", "S_max"))
    fuse_s = time.perf_counter() - started
    probe_n, gallery_n = probe_t.shape[0] * probe_t.shape[1], gallery_t.shape[0] * gallery_t.shape[1]
    return [
        {**common, "stage": "probe hypotheses (blur + EDSR + embed)", "templates": probe_n, "probe_size": args.probe_size,
         "scale": args.scale, "sr": f"EDSR x{args.scale}, {args.sr_blocks} blocks, {args.sr_channels} channels",
         "seconds": round(probe_s, 3), "templates_per_s": round(probe_n / probe_s, 1)},
        {**common, "stage": "gallery hypotheses (degrade + RM + embed)", "templates": gallery_n, "chains": len(chain_list),
         "rm_size": args.probe_size * args.scale, "seconds": round(gallery_s, 3), "templates_per_s": round(gallery_n / gallery_s, 1)},
        {**common, "stage": "fused scores (S_max x S_max) from cached templates", "score_pairs": probe_n * gallery_n,
         "seconds": round(fuse_s, 4), "pairs_per_s": round(probe_n * gallery_n / fuse_s)},
    ]


@BENCHMARKS.register("hypotheses")
def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lrfr bench hypotheses", description=__doc__)
    parser.add_argument("--probes", type=int, default=64)
    parser.add_argument("--gallery", type=int, default=32)
    parser.add_argument("--hypotheses", type=int, default=16, help="blur levels per probe (Sec. 3.3: 16)")
    parser.add_argument("--chains", type=int, default=15, help="degradation chains per gallery image (+ the undegraded)")
    parser.add_argument("--probe-size", type=int, default=16)
    parser.add_argument("--scale", type=int, default=4, choices=(2, 4, 8))
    parser.add_argument("--sr-blocks", type=int, default=4)
    parser.add_argument("--sr-channels", type=int, default=16)
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own setting)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for record in measure(args):
        emit(record)

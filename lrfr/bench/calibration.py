"""``lrfr bench calibration``: SynthFace's recognition-versus-resolution curve (see lrfr.experiments.calibration).

Prints the settings, then one JSON line per (probe px, kind in {synthetic, native}) with rank-1 and
verification accuracy (%) of a quick model trained on synthetic HR identities, then the native / synthetic
rank-1 and rank-20 ratios at TinyFace's mean face height (20 px) beside Cheng et al. 2018 Table 4's.
"""

from __future__ import annotations

import argparse
import dataclasses

from lrfr.bench import BENCHMARKS, emit
from lrfr.experiments.calibration import CalibrationConfig, measure_degradation_curve, native_synthetic_ratios
from lrfr.experiments.ui_cluster import TINYFACE_MEAN_HEIGHT

_SIZES = ("train_identities", "train_images", "test_identities", "probes_per_identity", "epochs", "seed",
          "input_size")


@BENCHMARKS.register("calibration")
def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lrfr bench calibration", description=__doc__)
    defaults = CalibrationConfig()
    for name in _SIZES:
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    parser.add_argument("--device", default=defaults.device, help="where the model trains: cpu, cuda or auto")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    config = dataclasses.replace(defaults, device=args.device, progress=not args.no_progress,
                                 **{k: getattr(args, k) for k in _SIZES})
    settings, records = measure_degradation_curve(config)
    emit(settings)
    for record in records:
        emit(record)
    if any(r["kind"] == "native" and r["probe_px"] == TINYFACE_MEAN_HEIGHT for r in records):
        emit(native_synthetic_ratios(records))

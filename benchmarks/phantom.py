"""Phantom speed: seconds per full-size LE/RC pair on this machine.

Prints (1) the simulation of one view (anatomy + dual-energy acquisition + truth masks) with
our default design, the anatomy built on a 0.2 mm grid and interpolated to the 0.1 mm detector,
against a baseline measured in the same run that builds the anatomy on the detector grid
itself; (2) the end-to-end cohort rate (DICOM and PNG writing included) with one worker per
core. Run: ``python benchmarks/phantom.py [--repeats 3] [--patients 2]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from cemsynth.phantom.acquisition import acquire
from cemsynth.phantom.anatomy import render_anatomy
from cemsynth.phantom.cohort import breast_spec, detector_geometry, truth_masks, write_cohort
from cemsynth.phantom.config import PhantomConfig
from cemsynth.phantom.physics import make_beams


def time_view(anatomy_factor: int, repeats: int, config: PhantomConfig) -> float:
    geometry = detector_geometry("full", 0.1, config)
    geometry = replace(geometry, anatomy_factor=anatomy_factor)
    beams = make_beams(config)
    spec = breast_spec(seed=0, patient=0, side=0, density="c", bpe="b", config=config)
    times = []
    for repeat in range(repeats):
        rng = np.random.default_rng(repeat)
        start = time.perf_counter()
        anatomy = render_anatomy(geometry.anatomy_grid, spec, "MLO", rng, config)
        _, distance = acquire(
            anatomy, anatomy_factor, (geometry.rows, geometry.cols), spec, beams, True, rng, config
        )
        truth_masks(anatomy, distance, anatomy_factor, config)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--patients", type=int, default=2)
    args = parser.parse_args()
    config = PhantomConfig()

    ours = time_view(anatomy_factor=2, repeats=args.repeats, config=config)
    baseline = time_view(anatomy_factor=1, repeats=args.repeats, config=config)
    print(f"one full-size view (2850 x 2394), simulation only, median of {args.repeats}:")
    print(f"  anatomy on detector grid (baseline): {baseline:6.2f} s")
    print(f"  anatomy on 0.2 mm grid (ours):       {ours:6.2f} s")
    print(f"  ratio baseline / ours:               {baseline / ours:6.2f}x")

    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as folder:
        result = write_cohort(
            Path(folder),
            n_patients=args.patients,
            seed=0,
            pixel_mm=0.1,
            size="full",
            config=config,
            workers=workers,
        )
    per_pair = result.seconds / result.n_pairs
    print(
        f"cohort: {result.n_pairs} full-size pairs with DICOM + masks in "
        f"{result.seconds:.1f} s on {workers} worker(s): {per_pair:.2f} s per pair "
        f"({60.0 / per_pair:.0f} pairs per minute)"
    )


if __name__ == "__main__":
    main()

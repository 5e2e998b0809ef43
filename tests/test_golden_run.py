"""Golden run: the whole demo on a small phantom cohort, end to end, must learn.

One deterministic run (fixed training steps, no time budget) of phantom -> index -> preprocess
-> split -> train (the demo's ``unet`` preset) -> synthesize -> evaluate, judged by the
evaluation's own criteria (:func:`cemsynth.evaluation.criteria.judge`) with
:data:`GOLDEN_TARGETS`: beat the trivial baselines (LE in the RC window; flat at the train
mean) on breast MAE, PSNR, SSIM and CHO d'. The numbers are printed (``pytest -rP`` shows
them). The negative controls feed the same criteria what a broken stage would produce, so this
test cannot pass vacuously:

- ``untrained``: a generator that never learned (one step at learning rate 0);
- ``swapped``: the evaluation pairs each synthetic image with the LE image as its "clinical"
  RC (an index or manifest that swapped LE and RC);
- ``wrong_window``: synthetic images mapped back to stored units with the LE window instead
  of the RC window (a preprocessing inverse with the wrong window).
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from cemsynth.demo import (
    MARKER_NAME,
    DemoResult,
    DemoSettings,
    demo_train_config,
    demo_window,
    evaluate_split,
    run_demo,
    synthesize_split,
)
from cemsynth.evaluation.config import BASELINE_FLAT_TRAIN, BASELINE_LE
from cemsynth.evaluation.criteria import Targets, Verdict, judge
from cemsynth.io.manifest import read_manifest, write_manifest
from cemsynth.preprocess.cache import open_cache
from cemsynth.preprocess.config import PreprocessConfig

pytestmark = pytest.mark.slow

# A cohort whose test split holds enhancing lesions (seed 0: test patient P0001, 4 images),
# trained for a fixed number of steps on one thread (pytest -n 2 runs another worker beside
# this one). Numbers in docs/results.md.
GOLDEN = DemoSettings(
    patients=6, seed=0, minutes=None, max_steps=300, threads=1, bootstrap=50, lpips=False
)
GOLDEN_TARGETS = Targets(
    baselines=(BASELINE_LE, BASELINE_FLAT_TRAIN),
    dprime_ratio_min=None,
    lesion_cnr_ratio_min=None,
    tissue_cnr_tolerance=None,
    no_extra_blobs=False,
    halo_removed_min=None,
    seam_tolerance=None,
    checkerboard_tolerance=None,
)
"""What a few hundred steps must reach: beat both trivial baselines on every pixel metric and
on d'. (The flat image at each breast's own mean is an oracle: the reference targets' job.)"""
CONTROLS = ("untrained", "swapped", "wrong_window")
PIXEL_CRITERIA = tuple(
    f"{metric} vs {baseline}"
    for baseline in GOLDEN_TARGETS.baselines
    for metric in ("mae_breast", "psnr_breast", "ssim_breast")
)


def _explain(verdict: Verdict) -> str:
    return "; ".join(f"{c.name} {c.passed}: {c.text}" for c in verdict.criteria)


def test_golden_run(tmp_path: Path) -> None:
    """One test, so the demo runs once (pytest-xdist's xdist_group marks were not honoured with
    pytest 9.2 here): its outputs, its learning, then every negative control; all problems are
    collected and reported together."""
    golden = run_demo(tmp_path / "demo", GOLDEN, console=Console(file=io.StringIO(), width=120))
    steps = golden.summary["demo"]["training"]["steps"]
    verdict = judge(golden.summary, GOLDEN_TARGETS)
    print(f"golden run, {steps} steps: {_explain(verdict)}")
    _check_outputs(golden)
    problems = [] if verdict.passed else [f"the model did not learn: {_explain(verdict)}"]
    for control in CONTROLS:
        caught = _control(golden, control, tmp_path / control)
        print(f"control {control}: {_explain(caught)}")
        # the pixel criteria must catch each breakage, not only d'
        if caught.passed or not set(PIXEL_CRITERIA) & set(caught.failed()):
            problems.append(f"control {control} was not caught: {_explain(caught)}")
    assert not problems, "\n".join(problems)


def _check_outputs(golden: DemoResult) -> None:
    from cemsynth.io.reader import read_image

    assert not (golden.out / MARKER_NAME).exists()
    summary = json.loads((golden.report / "summary.json").read_text())
    # one verdict: the report's summary.json holds the one the demo printed
    assert summary["demo"]["passed"] is golden.verdict.passed
    assert summary["verdict"] == json.loads(json.dumps(golden.verdict.to_dict()))
    assert "ideal_mae_breast" in summary["metrics"]  # the phantom's ideal RC, the ceiling
    assert "synthetic_seam_index" in summary["metrics"]
    assert (golden.report / "report.html").stat().st_size > 10_000
    assert golden.checkpoint.is_file()
    # one DICOM per test image, on the LE image's grid
    test_rows = read_manifest(golden.out / "test_manifest.csv")
    assert test_rows and summary["counts"]["evaluated"] == len(test_rows)
    for row in test_rows:
        name = f"{row.patient_id}_{row.laterality}_{row.view}.dcm"
        synthetic = read_image(golden.synthetic / name)
        le = read_image(row.le_path)
        assert synthetic.shape == le.shape
        assert synthetic.meta.pixel_spacing_mm == le.meta.pixel_spacing_mm


def _untrained(golden: DemoResult, tmp_path: Path) -> Path:
    """Synthetic images of the demo's generator at its initial weights."""
    from cemsynth.training import run_training

    run_dir = tmp_path / "untrained"
    config = replace(
        demo_train_config(GOLDEN),
        max_steps=1,
        lr_generator=0.0,
        lr_discriminator=0.0,
        val_patches=0,
    )
    run_training(golden.out / "cache", run_dir, config)
    synthetic = tmp_path / "synthetic"
    synthesize_split(
        golden.manifest,
        golden.splits,
        tmp_path / "test_manifest.csv",
        run_dir,
        synthetic,
        demo_window(GOLDEN),
        threads=1,
        console=Console(file=io.StringIO()),
    )
    return synthetic


def _swapped_manifest(golden: DemoResult, tmp_path: Path) -> Path:
    """The demo's manifest with LE and RC swapped in every row."""
    rows = [
        replace(r, le_path=r.rc_path, rc_path=r.le_path) for r in read_manifest(golden.manifest)
    ]
    path = tmp_path / "swapped.csv"
    write_manifest(path, rows)
    return path


def _wrong_window(golden: DemoResult, preprocess: PreprocessConfig, tmp_path: Path) -> Path:
    """The demo's synthetic images, mapped back to stored units with the LE window."""
    from cemsynth.inference.outputs import (
        read_synthetic_manifest,
        write_png16,
        write_synthetic_manifest,
    )
    from cemsynth.io.reader import read_image
    from cemsynth.preprocess.intensity import WindowRecord, unwindow, window

    folder = tmp_path / "wrong-window"
    folder.mkdir()
    rows = read_synthetic_manifest(golden.synthetic)
    for row in rows:
        image = read_image(golden.synthetic / row.path)
        windowed, _ = window(image.array, *preprocess.rc_window)
        array = unwindow(windowed, WindowRecord(*preprocess.le_window)).astype(np.float32)
        write_png16(folder / Path(row.path).with_suffix(".png").name, image.with_array(array))
    write_synthetic_manifest(
        folder, [replace(r, path=Path(r.path).with_suffix(".png").name) for r in rows]
    )
    return folder


def _control(golden: DemoResult, control: str, folder: Path) -> Verdict:
    """The criteria on what the broken stage ``control`` would have produced."""
    folder.mkdir()
    preprocess = open_cache(golden.out / "cache").config
    pred_dir, manifest = golden.synthetic, golden.manifest
    if control == "untrained":
        pred_dir = _untrained(golden, folder)
    elif control == "swapped":
        manifest = _swapped_manifest(golden, folder)
    else:
        pred_dir = _wrong_window(golden, preprocess, folder)
    evaluation = evaluate_split(
        pred_dir,
        manifest,
        folder / "report",
        golden.splits,
        bootstrap=GOLDEN.bootstrap,
        lpips=False,
        targets=GOLDEN_TARGETS,
        preprocess=preprocess,  # the wrong-window folder has no provenance.json
    )
    return judge(evaluation.summary, GOLDEN_TARGETS)

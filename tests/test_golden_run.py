"""Golden run: the whole demo on a small phantom cohort, end to end, must learn.

One deterministic run (fixed training steps, no time budget) of phantom -> index -> preprocess
-> split -> train -> synthesize -> evaluate, then the demo's learning criteria
(:func:`cemsynth.demo.check_learning`: beat the LE and flat baselines on masked MAE and SSIM
by a margin on the halo-free test images; enhancing lesions brighter than their
surroundings). The numbers are printed (``pytest -rP`` shows them). The negative controls feed
the same criteria what a broken stage would produce, so this test cannot pass vacuously:

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
    LearningCheck,
    check_learning,
    demo_train_config,
    evaluate_split,
    run_demo,
    synthesize_split,
)
from cemsynth.io.cache import open_cache
from cemsynth.io.manifest import read_manifest, write_manifest
from cemsynth.preprocess.config import PreprocessConfig

pytestmark = pytest.mark.slow

# A cohort whose test split holds enhancing lesions and halo-free images (seed 0: test patient
# P0001, 4 images, 2 halo-free), trained for a fixed number of steps on one thread (pytest -n 2
# runs another worker beside this one). 300 steps, not fewer: the generator's weight average
# lags the weights, and at 200 steps its lesion contrast sat at the criterion's threshold and
# moved with the CPU's floating-point kernels (0.055 and 0.097 on two machines). Numbers in
# docs/results.md.
GOLDEN = DemoSettings(
    patients=6, seed=0, minutes=None, max_steps=300, threads=1, bootstrap=50, lpips=False
)
CONTROLS = ("untrained", "swapped", "wrong_window")


def _explain(check: LearningCheck) -> str:
    return "; ".join(f"{c.name} {c.passed}: {c.text}" for c in check.criteria)


def test_golden_run(tmp_path: Path) -> None:
    """One test, so the demo runs once (pytest-xdist's xdist_group marks were not honoured with
    pytest 9.2 here): its outputs, its learning, then every negative control; all problems are
    collected and reported together."""
    golden = run_demo(tmp_path / "demo", GOLDEN, console=Console(file=io.StringIO(), width=120))
    steps = golden.summary["demo"]["training"]["steps"]
    print(f"golden run, {steps} steps: {_explain(golden.check)}")
    _check_outputs(golden)
    problems = [] if golden.check.passed else [f"the model did not learn: {_explain(golden.check)}"]
    for control in CONTROLS:
        check = _control(golden, control, tmp_path / control)
        print(f"control {control}: {_explain(check)}")
        # the pixel criteria must catch each breakage, not only the lesion criterion
        if check.passed or "mae" not in check.failed():
            problems.append(f"control {control} was not caught: {_explain(check)}")
    assert not problems, "\n".join(problems)


def _check_outputs(golden: DemoResult) -> None:
    from cemsynth.io.reader import read_image

    assert not (golden.out / MARKER_NAME).exists()
    summary = json.loads((golden.report / "summary.json").read_text())
    assert summary["demo"]["passed"] is golden.check.passed
    assert [c["name"] for c in summary["demo"]["criteria"]] == ["mae", "ssim", "lesion"]
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
        GOLDEN,
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


def _control(golden: DemoResult, control: str, folder: Path) -> LearningCheck:
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
        preprocess,
        golden.splits,
        bootstrap=GOLDEN.bootstrap,
        lpips=False,
    )
    return check_learning(evaluation)

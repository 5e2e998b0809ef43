"""``cemsynth reference-run``: the CPU recipe's reference run, repeatable with one command.

A larger phantom cohort than the demo's, the ``unet`` preset trained for at most an hour of
wall-clock time, and at each point of a learning curve (by default after 10, 20, 40 and 60
minutes of training) the test split synthesized with ``cemsynth predict``'s defaults and
scored by ``cemsynth evaluate`` against the reference targets. Output folder::

    OUT/phantom/, OUT/manifest.csv, OUT/cache/   the cohort, as the demo makes it
    OUT/run/                                      checkpoints and logs of the one training run
    OUT/curve/MINUTES/synthetic/                  the test split synthesized at that point
    OUT/curve/MINUTES/report/                     its evaluation (report.html, summary.json)
    OUT/reference.json                            the learning curve and the settings

Training is one run, resumed at each point (exactly as if uninterrupted: the trainer's resume
is bitwise); the minutes count training only, not the synthesis and scoring in between.
With ``resume``, a run stopped after some points (or extended with later ones) continues from
the points that ``reference.json`` already holds instead of starting again.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cemsynth.config_files import ConfigFile
from cemsynth.errors import CemsynthError
from cemsynth.evaluation.criteria import REFERENCE_TARGETS, judge
from cemsynth.io.json_files import write_json

REFERENCE_OUT = Path("reference-output")
REFERENCE_PATIENTS = 60
"""Phantom patients: 42 / 6 / 12 for training / validation / test (the default split)."""
REFERENCE_SEED = 1
REFERENCE_PRESET = "unet"
CURVE_MINUTES = (10.0, 20.0, 40.0, 60.0)
"""Training minutes after which the model is scored; the last is the training budget."""
MAX_STEPS = 1_000_000
"""Upper bound on training steps; the time budget ends training first."""


@dataclass(frozen=True)
class ReferenceSettings(ConfigFile):
    """What a reference run does (see the module docstring)."""

    KIND = "reference run"

    patients: int = REFERENCE_PATIENTS
    seed: int = REFERENCE_SEED
    curve_minutes: tuple[float, ...] = CURVE_MINUTES
    bootstrap: int = 200
    threads: int = 0

    def __post_init__(self) -> None:
        points = self.curve_minutes
        if not points or any(b <= a for a, b in itertools.pairwise(points)):
            raise CemsynthError(f"curve minutes must be increasing, got {points}")
        if points[0] <= 0:
            raise CemsynthError(f"curve minutes must be positive, got {points}")


def headline(summary: dict[str, Any], steps: int, train_s: float) -> dict[str, Any]:
    """The numbers of one learning-curve point (the issue's targets, and what they cost)."""

    def mean(name: str) -> float | None:
        value = (summary.get("metrics", {}).get(name) or {}).get("mean")
        return float(value) if isinstance(value, int | float) else None

    detect = summary.get("detectability", {})
    sources = detect.get("sources", {})
    verdict = judge(summary, REFERENCE_TARGETS)
    return {
        "steps": steps,
        "train_seconds": round(train_s, 1),
        "mae": {s: mean(f"{s}_mae_breast") for s in _SOURCES},
        "psnr": {s: mean(f"{s}_psnr_breast") for s in _SOURCES},
        "ssim": {s: mean(f"{s}_ssim_breast") for s in _SOURCES},
        "dprime": {s: (sources.get(s) or {}).get("dprime") for s in ("clinical", *_SOURCES)},
        "dprime_ratio": (detect.get("ratio_synthetic_to_clinical") or {}).get("value"),
        "lesion_contrast": summary.get("lesion_contrast"),
        "tissue_cnr": {"synthetic": mean("synthetic_cnr"), "clinical": mean("clinical_cnr")},
        "blobs": summary.get("hallucinations"),
        "halo_removed": (summary.get("halo") or {}).get("share_removed"),
        "seam_index": {s: mean(f"{s}_seam_index") for s in ("synthetic", "clinical")},
        "checkerboard_index": {
            s: mean(f"{s}_checkerboard_index") for s in ("synthetic", "clinical")
        },
        "ideal": {
            "mae": mean("ideal_mae_breast"),
            "psnr": mean("ideal_psnr_breast"),
            "ssim": mean("ideal_ssim_breast"),
            "synthetic_mae_vs_ideal": mean("synthetic_mae_breast_ideal"),
            "synthetic_ssim_vs_ideal": mean("synthetic_ssim_breast_ideal"),
        },
        "verdict": verdict.status,
        "failed": verdict.failed(),
    }


_SOURCES = ("synthetic", "baseline_le", "baseline_flat_train", "baseline_flat_own", "ideal")


def recorded_points(
    out: Path, settings: ReferenceSettings, steps_in_last: int | None
) -> list[dict[str, Any]]:
    """The learning-curve points of an earlier reference run in ``out`` that a resumed run keeps.

    They must have been made with the same cohort (patients, seed), be the first points of
    ``settings.curve_minutes``, and the last of them must be the training step that
    ``run/last.pt`` holds (``steps_in_last``), so that training continues from that point.
    Raises CemsynthError naming ``reference.json`` when the earlier run does not fit.
    """
    path = out / "reference.json"
    if not path.is_file():
        raise CemsynthError(f"{path}: nothing to resume (no reference.json); drop --resume")
    try:
        document = json.loads(path.read_text())
        earlier = document["settings"]
        points = list(document["curve"])
        minutes = [float(point["minutes"]) for point in points]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CemsynthError(f"{path}: not a reference run's record ({error})") from None
    for name in ("patients", "seed"):
        if earlier.get(name) != getattr(settings, name):
            raise CemsynthError(
                f"{path}: made with {name} {earlier.get(name)}, requested "
                f"{getattr(settings, name)}; resume with the same cohort or choose another --out"
            )
    requested = list(settings.curve_minutes[: len(minutes)])
    if minutes != requested or len(minutes) >= len(settings.curve_minutes):
        raise CemsynthError(
            f"{path}: holds the points {', '.join(f'{m:g}' for m in minutes)} min; a resumed run"
            f" must add later points to them (requested "
            f"{', '.join(f'{m:g}' for m in settings.curve_minutes)})"
        )
    if points and points[-1].get("steps") != steps_in_last:
        raise CemsynthError(
            f"{path}: its last point is step {points[-1].get('steps')}, but run/last.pt holds step "
            f"{steps_in_last}; the run went on after that point and cannot be resumed here"
        )
    return points


def run_reference(
    out: Path, settings: ReferenceSettings, console: Console | None = None, resume: bool = False
) -> dict[str, Any]:
    """Run the reference run into ``out`` (see the module docstring); returns
    ``reference.json``'s content. With ``resume``, keep the points an earlier run recorded
    there (:func:`recorded_points`) and train on from its ``run/last.pt``. Raises
    CemsynthError for a stage's failure."""
    import torch

    from cemsynth.batch import available_cpus
    from cemsynth.demo import _Stages, build_phantom_dataset, evaluate_split, synthesize_split
    from cemsynth.inference import SlidingWindowConfig
    from cemsynth.training import get_train_preset, run_training

    console = console or Console()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    threads = settings.threads or available_cpus()
    torch.set_num_threads(threads)
    stages = _Stages(console)
    dataset = build_phantom_dataset(out, settings.patients, settings.seed, stages, console)
    config = replace(get_train_preset(REFERENCE_PRESET), max_steps=MAX_STEPS, seed=settings.seed)
    window = SlidingWindowConfig().for_model(config.patch_size)  # what predict would pick
    run_dir = out / "run"
    curve: list[dict[str, Any]] = []
    trained_s = 0.0
    if resume:
        curve = recorded_points(out, settings, _step_in_last(run_dir))
        trained_s = float(curve[-1]["train_seconds"]) if curve else 0.0
        console.print(f"resuming after {len(curve)} recorded points, {trained_s:.0f} s trained")
    document: dict[str, Any] = {}
    for index, minutes in enumerate(settings.curve_minutes):
        if index < len(curve):
            continue
        console.rule(f"[bold]training to {minutes:g} min")
        start = time.perf_counter()
        trained = run_training(
            dataset.cache,
            run_dir,
            config,
            resume=index > 0,
            progress=True,
            console=console,
            time_limit_s=max(minutes * 60.0 - trained_s, 1.0),
        )
        trained_s += time.perf_counter() - start
        if trained.stopped_early:  # Ctrl-C or SIGTERM: last.pt is written; stop here
            raise KeyboardInterrupt
        point = out / "curve" / f"{minutes:g}"
        synthesize_s = time.perf_counter()
        synthesize_split(
            dataset.manifest,
            dataset.splits,
            point / "test_manifest.csv",
            run_dir,
            point / "synthetic",
            window,
            threads,
            console,
        )
        synthesize_s = time.perf_counter() - synthesize_s
        evaluation = evaluate_split(
            point / "synthetic",
            dataset.manifest,
            point / "report",
            dataset.splits,
            bootstrap=settings.bootstrap,
            seed=settings.seed,
            console=console,
            targets=REFERENCE_TARGETS,
        )
        numbers = headline(evaluation.summary, trained.step, trained_s)
        numbers["minutes"] = minutes
        numbers["synthesis_seconds_per_image"] = round(
            synthesize_s / max(len(evaluation.cases), 1), 2
        )
        curve.append(numbers)
        document = {
            "format": "cemsynth-reference-run",
            "settings": asdict(settings),
            "train_config": config.to_dict(),
            "window": asdict(window),
            "test_images": dataset.test_images,
            "curve": curve,
        }
        write_json(out / "reference.json", document, indent=1)
        print_point(console, numbers)
    return document


def _step_in_last(run_dir: Path) -> int | None:
    """The training step of ``run_dir/last.pt``, or None without one."""
    from cemsynth.checkpoint import LAST_NAME, read_checkpoint

    path = run_dir / LAST_NAME
    return int(read_checkpoint(path)["step"]) if path.is_file() else None


def print_point(console: Console, numbers: dict[str, Any]) -> None:
    """One learning-curve point as a table and its verdict."""

    def fmt(value: Any, digits: int = 3) -> str:
        return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"

    table = Table(title=f"after {numbers['minutes']:g} min, {numbers['steps']} steps")
    for name in ("image", "MAE", "PSNR", "SSIM", "d'"):
        table.add_column(name, justify="right" if name != "image" else "left")
    for source in _SOURCES:
        table.add_row(
            source,
            fmt(numbers["mae"][source], 4),
            fmt(numbers["psnr"][source], 2),
            fmt(numbers["ssim"][source], 4),
            fmt(numbers["dprime"].get(source), 2),
        )
    console.print(table)
    lesion = numbers["lesion_contrast"] or {}
    console.print(
        f"d' ratio {fmt(numbers['dprime_ratio'])}; lesion CNR {fmt(lesion.get('synthetic'))} vs "
        f"{fmt(lesion.get('clinical'))} ({lesion.get('n_images', 0)} images); tissue CNR "
        f"{fmt(numbers['tissue_cnr']['synthetic'])} vs {fmt(numbers['tissue_cnr']['clinical'])}; "
        f"seam index {fmt(numbers['seam_index']['synthetic'])} vs "
        f"{fmt(numbers['seam_index']['clinical'])}; verdict {numbers['verdict']}",
        markup=False,
        highlight=False,
    )

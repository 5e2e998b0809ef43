"""``cemsynth demo``: the main job end to end on the built-in phantom, in minutes on a CPU.

Stages (each the library call behind one ``cemsynth`` command): phantom -> index -> preprocess
-> split -> train (the ``unet`` preset within a wall-clock budget) -> synthesize the test
split as DICOM on the original pixel grid -> evaluate against the clinical RC images with
baselines -> report. Output folder::

    OUT/.cemsynth-demo        stamp: this folder is a demo's (``--force`` only replaces such)
    OUT/DEMO_INCOMPLETE       present while the demo runs; removed as the very last step
    OUT/phantom/              the simulated cohort: DICOM, truth masks, manifest.csv
    OUT/manifest.csv          the index of the cohort (``cemsynth index``)
    OUT/cache/                preprocessed pairs and splits.json (``cemsynth preprocess``)
    OUT/run/                  checkpoints and logs (``cemsynth train``)
    OUT/test_manifest.csv     the test split's rows: what is synthesized
    OUT/synthetic/            synthetic RC DICOM + synthetic_manifest.csv (``cemsynth predict``)
    OUT/report/               report.html, metrics.csv, summary.json (``cemsynth evaluate``)

``report/`` is written as ``report.partial/`` and renamed when complete; its ``summary.json``
carries a ``demo`` section (settings, stage times, training). An interrupted or failed demo
leaves ``DEMO_INCOMPLETE`` and no ``report/``.

**One verdict.** The demo's pass/fail is the evaluation's own verdict
(:func:`cemsynth.evaluation.criteria.judge`), judged against :data:`DEMO_TARGETS`, the
thresholds a few minutes of CPU training can reach; the report, ``summary.json`` and the
console show that same verdict. The verdict against the reference targets of ``cemsynth
evaluate`` is printed and stored beside it (``demo.reference_verdict``).
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from cemsynth.config_files import ConfigFile
from cemsynth.errors import CemsynthError
from cemsynth.evaluation.criteria import REFERENCE_TARGETS, Targets, Verdict, judge
from cemsynth.io.messages import counted
from cemsynth.phantom.config import CohortConfig

if TYPE_CHECKING:
    from cemsynth.evaluation import EvaluationResult
    from cemsynth.inference import SlidingWindowConfig
    from cemsynth.preprocess.config import PreprocessConfig
    from cemsynth.training import TrainConfig, TrainResult

# --- the demo's defaults: the one home of each ------------------------------------------------

DEMO_OUT = Path("demo-output")
DEMO_COHORT = CohortConfig(size="small", patients=60)
"""The phantom cohort: 60 patients (4 images each, split 70/10/20 by patient: 42 for
training, a test split of 12 patients and 48 images like the reference run's, so that its
lesion detectability rests on more than two lesions), ``cemsynth phantom``'s seed and 0.1 mm
detector, read out with 4 x 4 binning (712 x 598 at 0.4 mm) and preprocessed at 0.4 mm (the
grid the paper's model works on), so preprocessing does not resample. Data is free; the
phantom takes about 35 s of the budget. ``--patients`` and ``--seed`` replace its patients
and seed."""
DEMO_MINUTES = 8.0
"""Wall-clock budget of the whole demo; training gets what the other stages leave."""
MIN_PATIENTS = 3
"""One patient each for train, validation and test."""

DEMO_PRESET = "phantom"
"""Preprocessing preset: the cohort's 0.4 mm grid, kept as it is."""

DEMO_STRIDE = 32
"""Sliding-window stride (pixels). The paper's 16 (``predict``'s default) evaluates 3.3-3.7x
the windows; on two demo test images its output differed from stride 32's by 0.01 on average
inside the breast ([-1, 1] RC scale) and scored the same MAE against the clinical RC to three
decimals. 32 keeps synthesis within the CPU budget."""

DEMO_TRAIN_PRESET = "unet"
"""The CPU recipe (docs/training.md); the demo changes only its seed and step bound."""
DEMO_MAX_STEPS = 5000
"""Upper bound on training steps; on a CPU the time budget ends training first."""

DEMO_BOOTSTRAP = 200
"""Bootstrap resamples of the evaluation's intervals (the ``evaluate`` default is 1000)."""

# Seconds kept back from training for synthesis and evaluation (measured on 2 cores with the
# 48-image test split: 1.35 s per image to synthesize at stride 32 and 1.9 s to evaluate,
# plus loading and the report; 40 % more per image for a busier machine).
RESERVE_FIXED_S = 20.0
RESERVE_PER_TEST_IMAGE_S = 4.5
MIN_TRAIN_S = 60.0
"""Training gets at least this long even when the budget is spent (the demo then says so)."""

# --- the demo's thresholds for the evaluation's verdict -----------------------------------------

DEMO_TARGETS = Targets(
    baselines=(),
    dprime_ratio_min=0.3,
    lesion_cnr_ratio_min=None,
    tissue_cnr_tolerance=0.3,
    no_extra_blobs=False,
    halo_removed_min=None,
    seam_tolerance=0.05,
    checkerboard_tolerance=0.05,
)
"""What a few minutes of CPU training must reach (issue 12): lesion detectability at least 0.3
of the clinical image's, tissue contrast cancelled as in the clinical RC, no seams and no
checkerboard. Beating every baseline is the reference targets' job (reported beside it)."""

SHOWN_SOURCES = ("synthetic", "baseline_le", "baseline_flat_train", "baseline_flat_own", "ideal")
SHORT_LABELS = {
    "synthetic": "synthetic (this model)",
    "baseline_le": "LE in the RC window",
    "baseline_flat_train": "flat at train mean",
    "baseline_flat_own": "flat at own mean (oracle)",
    "ideal": "ideal RC (ceiling)",
}

MARKER_NAME = "DEMO_INCOMPLETE"
STAMP_NAME = ".cemsynth-demo"
STAMP_FORMAT = "cemsynth-demo"
REPORT_DIR = "report"
PARTIAL_SUFFIX = ".partial"

STAGES = (
    ("phantom", "simulate CEM exams with ground truth"),
    ("index", "pair low-energy and recombined images"),
    ("preprocess", "mask, crop, resample, window; cache for training"),
    ("split", "patient-level train/validation/test split"),
    ("train", f"train the generator ({DEMO_TRAIN_PRESET} preset)"),
    ("synthesize", "synthesize the test split as DICOM on the original grid"),
    ("evaluate", "metrics against the clinical RC, baselines, HTML report"),
)


class DemoInterrupted(CemsynthError):
    """Ctrl-C (or SIGTERM during training) stopped the demo; the folder is marked incomplete."""


@dataclass(frozen=True)
class DemoSettings(ConfigFile):
    """What a demo run does.

    Attributes:
        patients: phantom patients (>= 3).
        seed: seeds the phantom, the split, training and evaluation.
        minutes: wall-clock budget of the whole demo in minutes; None: no budget, train
            exactly ``max_steps`` (the golden test's deterministic mode).
        max_steps: training steps (an upper bound when ``minutes`` is set).
        stride: sliding-window stride in cached-grid pixels.
        bootstrap: evaluation bootstrap resamples.
        threads: torch CPU threads (0: one per available core).
        lpips: compute LPIPS in the evaluation.
    """

    KIND = "demo"

    patients: int = DEMO_COHORT.patients
    seed: int = DEMO_COHORT.seed
    minutes: float | None = DEMO_MINUTES
    max_steps: int = DEMO_MAX_STEPS
    stride: int = DEMO_STRIDE
    bootstrap: int = DEMO_BOOTSTRAP
    threads: int = 0
    lpips: bool = True

    def __post_init__(self) -> None:
        if self.patients < MIN_PATIENTS:
            raise CemsynthError(
                f"--patients must be at least {MIN_PATIENTS} for the demo (one each for "
                f"train, validation and test), got {self.patients}"
            )
        if self.minutes is not None and not (math.isfinite(self.minutes) and self.minutes > 0):
            raise CemsynthError(f"--minutes must be a positive number, got {self.minutes}")
        if self.max_steps < 1 or self.stride < 1 or self.bootstrap < 1 or self.threads < 0:
            raise CemsynthError("max_steps, stride and bootstrap must be >= 1, threads >= 0")


@dataclass
class DemoResult:
    """Where a finished demo put things, and what it measured."""

    out: Path
    report: Path
    synthetic: Path
    checkpoint: Path
    manifest: Path
    splits: Path
    verdict: Verdict
    """The evaluation's verdict against :data:`DEMO_TARGETS` (also in the report)."""
    reference_verdict: Verdict
    """The same aggregates against the reference targets of ``cemsynth evaluate``."""
    summary: dict[str, Any]
    stage_seconds: dict[str, float] = field(default_factory=dict)


# --- the output folder -------------------------------------------------------------------------


def prepare_out(out: Path, force: bool) -> bool:
    """Refuse a non-empty ``out`` unless ``force`` and it is an earlier demo's; then empty it.

    Returns True when an earlier demo's files were removed.

    Raises CemsynthError (one line): ``out`` is a file; ``out`` holds files and ``force`` is
    not given; ``force`` is given but ``out`` is not a demo folder (no stamp: we never delete
    a folder the demo did not make).
    """
    if out.exists() and not out.is_dir():
        raise CemsynthError(f"{out}: is a file; choose a folder for --out")
    if not out.exists() or not any(out.iterdir()):
        return False
    if not force:
        raise CemsynthError(
            f"{out} is not empty; add --force to replace an earlier demo there, or choose a "
            "new --out folder"
        )
    if not (out / STAMP_NAME).is_file():
        raise CemsynthError(
            f"{out} holds files the demo did not write (no {STAMP_NAME}); --force only "
            "replaces an earlier demo's folder: choose a new --out folder"
        )
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    return True


# --- the demo ----------------------------------------------------------------------------------


def demo_train_config(settings: DemoSettings) -> TrainConfig:
    """The :data:`DEMO_TRAIN_PRESET` preset with the demo's seed and step bound."""
    from cemsynth.training import get_train_preset

    return replace(
        get_train_preset(DEMO_TRAIN_PRESET), max_steps=settings.max_steps, seed=settings.seed
    )


def demo_window(settings: DemoSettings) -> SlidingWindowConfig:
    """``cemsynth predict``'s sliding window with the demo's stride."""
    from cemsynth.inference import SlidingWindowConfig

    return SlidingWindowConfig(stride=settings.stride)


class _Stages:
    """Numbered stage headers, their wall times, and which stage was running."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.seconds: dict[str, float] = {}
        self.current = ""

    @contextmanager
    def stage(self, name: str, detail: str = "") -> Iterator[None]:
        number = [s for s, _ in STAGES].index(name) + 1
        self.console.rule(f"[bold]{number}/{len(STAGES)} {name}", align="left")
        self.console.print(f"{dict(STAGES)[name]}{detail}", markup=False, highlight=False)
        self.current = name
        start = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - start
        self.current = ""


def run_demo(
    out: Path,
    settings: DemoSettings | None = None,
    force: bool = False,
    console: Console | None = None,
) -> DemoResult:
    """Run the whole pipeline on a phantom cohort under ``out`` (see the module docstring).

    Raises:
        CemsynthError: bad settings, a non-empty ``out`` without ``force``, a stage's
            failure (one line).
        DemoInterrupted: Ctrl-C; ``out/DEMO_INCOMPLETE`` stays and ``report/`` is absent.
    """
    import torch

    from cemsynth.batch import available_cpus

    settings = settings or DemoSettings()
    console = console or Console()
    out = Path(out)
    replaced = prepare_out(out, force)
    start = time.perf_counter()
    deadline = None if settings.minutes is None else start + settings.minutes * 60.0
    threads = settings.threads or available_cpus()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)

    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER_NAME
    marker.write_text(
        "The cemsynth demo that writes this folder has not finished (it is running, or it was "
        "interrupted or failed). Outputs here may be incomplete; rerun with --force.\n",
        encoding="utf-8",
    )
    from cemsynth.io.json_files import write_json  # numpy: not at import time

    write_json(
        out / STAMP_NAME,
        {
            "format": STAMP_FORMAT,
            "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "settings": asdict(settings),
        },
    )
    stages = _Stages(console)
    budget = (
        f"budget {settings.minutes:g} min"
        if settings.minutes is not None
        else f"{settings.max_steps} training steps"
    )
    console.rule("[bold]cemsynth demo")
    if replaced:
        console.print(f"replacing the earlier demo in {out} (--force)", markup=False)
    console.print(
        f"{settings.patients} phantom patients, seed {settings.seed}, {budget}, {threads} CPU "
        f"thread(s); output in {out}",
        markup=False,
        highlight=False,
    )
    try:
        result = _run_stages(out, settings, deadline, threads, stages, console)
    except KeyboardInterrupt:
        where = stages.current or "between stages"
        raise DemoInterrupted(
            f"demo interrupted during {where}; {out} is incomplete ({MARKER_NAME} marks it, "
            "there is no report/); rerun with --force"
        ) from None
    except BaseException:
        if stages.current:
            console.print(
                f"demo stopped during {stages.current}; {out} is incomplete ({MARKER_NAME})",
                markup=False,
                highlight=False,
            )
        raise
    finally:
        torch.set_num_threads(previous_threads)
    marker.unlink()
    print_result(console, result, time.perf_counter() - start)
    return result


@dataclass(frozen=True)
class PhantomDataset:
    """A simulated cohort indexed, preprocessed and split: what training and scoring read."""

    manifest: Path
    cache: Path
    splits: Path
    test_images: int


def build_phantom_dataset(
    out: Path, patients: int, seed: int, stages: _Stages, console: Console
) -> PhantomDataset:
    """The first four stages: phantom cohort -> manifest -> cache (preset
    :data:`DEMO_PRESET`) -> patient split, under ``out`` (``phantom/``, ``manifest.csv``,
    ``cache/``). Raises CemsynthError when an input fails or the test split is empty."""
    from cemsynth.batch import BatchReport, available_cpus
    from cemsynth.data.splits import SPLITS_NAME, SplitConfig, split_cache
    from cemsynth.index import index_folder, write_index
    from cemsynth.phantom.cohort import MANIFEST_NAME, write_cohort
    from cemsynth.phantom.config import PhantomConfig
    from cemsynth.preprocess.cache import build_cache
    from cemsynth.preprocess.config import get_preset

    phantom_dir = out / "phantom"
    with stages.stage("phantom"):
        cohort = write_cohort(
            phantom_dir,
            n_patients=patients,
            seed=seed,
            pixel_mm=DEMO_COHORT.pixel_mm,
            size=DEMO_COHORT.size,
            config=PhantomConfig(),
            workers=0,
            progress=True,
        )
        console.print(f"{cohort.n_pairs} LE/RC pairs with truth masks in {phantom_dir}")

    report = BatchReport(echo=console)
    manifest = out / MANIFEST_NAME
    with stages.stage("index"):
        indexed = index_folder(phantom_dir, rules="phantom", report=report)
        write_index(indexed, manifest)
        console.print(f"{len(indexed.pairs)} pairs -> {manifest}")

    cache_dir = out / "cache"
    with stages.stage("preprocess", f" (preset '{DEMO_PRESET}')"):
        cache = build_cache(
            indexed.pairs,
            cache_dir,
            get_preset(DEMO_PRESET),
            report,
            workers=available_cpus(),
            manifest_path=manifest,
            progress_console=console,
        )
        console.print(f"{len(cache.entries)} pairs cached in {cache_dir}")
    if report.failures:
        report.print_summary(console, what="files")
        raise CemsynthError(f"{len(report.failures)} demo inputs failed; see the list above")

    with stages.stage("split"):
        splits = split_cache(cache_dir, SplitConfig(seed=seed))
        console.print(
            ", ".join(
                f"{name} {counted(len(splits.patients[name]), 'patient')} / "
                f"{counted(len(splits.entries[name]), 'image')}"
                for name in ("train", "val", "test")
            )
        )
    n_test = len(splits.entries["test"])
    if n_test == 0:
        raise CemsynthError("the test split is empty; give the demo more --patients")
    return PhantomDataset(manifest, cache_dir, cache_dir / SPLITS_NAME, n_test)


def _run_stages(
    out: Path,
    settings: DemoSettings,
    deadline: float | None,
    threads: int,
    stages: _Stages,
    console: Console,
) -> DemoResult:
    start = time.perf_counter()
    dataset = build_phantom_dataset(out, settings.patients, settings.seed, stages, console)
    manifest, cache_dir, splits_path = dataset.manifest, dataset.cache, dataset.splits
    n_test = dataset.test_images
    run_dir = out / "run"
    train_config = demo_train_config(settings)
    time_limit = None
    detail = f" ({settings.max_steps} steps)"
    if deadline is not None:
        reserve = RESERVE_FIXED_S + RESERVE_PER_TEST_IMAGE_S * n_test
        time_limit = deadline - time.perf_counter() - reserve
        if time_limit < MIN_TRAIN_S:
            console.print(
                f"note: the --minutes budget leaves {max(time_limit, 0):.0f} s for training; "
                f"training {MIN_TRAIN_S:.0f} s anyway (the model may not learn enough)",
                markup=False,
                highlight=False,
            )
            time_limit = MIN_TRAIN_S
        detail = f" (time budget {time_limit:.0f} s, at most {settings.max_steps} steps)"
    with stages.stage("train", detail):
        trained = _train(cache_dir, run_dir, train_config, time_limit, console)

    synthetic_dir = out / "synthetic"
    test_manifest = out / "test_manifest.csv"
    with stages.stage("synthesize", f" (stride {settings.stride})"):
        checkpoint = synthesize_split(
            manifest,
            splits_path,
            test_manifest,
            run_dir,
            synthetic_dir,
            demo_window(settings),
            threads,
            console,
        )

    report_dir = out / REPORT_DIR
    partial = out / (REPORT_DIR + PARTIAL_SUFFIX)
    with stages.stage("evaluate"):
        evaluation = evaluate_split(
            synthetic_dir,
            manifest,
            partial,
            splits_path,
            bootstrap=settings.bootstrap,
            seed=settings.seed,
            lpips=settings.lpips,
            console=console,
            targets=DEMO_TARGETS,
        )
        console.print(
            f"{len(evaluation.cases)} test images scored against their clinical RC "
            f"({len(evaluation.skipped)} skipped)",
            markup=False,
            highlight=False,
        )

    summary = dict(evaluation.summary)
    verdict = judge(summary, DEMO_TARGETS)
    reference = judge(summary, REFERENCE_TARGETS)
    summary["demo"] = {
        "settings": asdict(settings),
        "threads": threads,
        "train_config": train_config.to_dict(),
        "training": {
            "steps": trained.step,
            "seconds": trained.seconds,
            "time_limited": trained.time_limited,
            "time_limit_s": time_limit,
            "best_val_loss": trained.best_val_loss,
            "last_val": trained.last_val,
        },
        "stage_seconds": dict(stages.seconds),
        "wall_seconds": time.perf_counter() - start,
        "stride": settings.stride,
        "outputs": {
            "report": str(report_dir / "report.html"),
            "synthetic": str(synthetic_dir),
            "checkpoint": str(checkpoint),
        },
        "passed": verdict.passed,
        "reference_verdict": reference.to_dict(),
    }
    # summary.json last and atomically, then the whole folder into place at once
    from cemsynth.evaluation.run import SUMMARY_NAME
    from cemsynth.io.json_files import write_json

    write_json(partial / SUMMARY_NAME, summary)
    if report_dir.exists():
        shutil.rmtree(report_dir)
    partial.rename(report_dir)
    return DemoResult(
        out=out,
        report=report_dir,
        synthetic=synthetic_dir,
        checkpoint=checkpoint,
        manifest=manifest,
        splits=splits_path,
        verdict=verdict,
        reference_verdict=reference,
        summary=summary,
        stage_seconds=dict(stages.seconds),
    )


def _train(
    cache_dir: Path,
    run_dir: Path,
    config: TrainConfig,
    time_limit: float | None,
    console: Console,
) -> TrainResult:
    from cemsynth.training import run_training

    trained = run_training(
        cache_dir, run_dir, config, progress=True, console=console, time_limit_s=time_limit
    )
    if trained.stopped_early:
        raise KeyboardInterrupt  # the trainer caught Ctrl-C and wrote last.pt
    val = trained.last_val or {}
    console.print(
        f"{trained.step} steps in {trained.seconds:.0f} s; validation MAE "
        f"{val.get('val_mae', math.nan):.4f}, SSIM {val.get('val_ssim', math.nan):.4f}",
        markup=False,
        highlight=False,
    )
    return trained


def synthesize_split(
    manifest: Path,
    splits_path: Path,
    test_manifest: Path,
    run_dir: Path,
    synthetic_dir: Path,
    window: SlidingWindowConfig,
    threads: int,
    console: Console,
) -> Path:
    """Synthesize the test split's LE images as DICOM into ``synthetic_dir``.

    Writes ``test_manifest`` (the test rows of ``manifest``), loads the model in ``run_dir``
    (``best.pt``, else ``last.pt``) once and runs ``cemsynth predict``'s batch over it with
    the sliding ``window``. Returns the checkpoint used. Raises CemsynthError if an image
    fails.
    """
    from cemsynth.batch import BatchReport
    from cemsynth.data.splits import read_splits
    from cemsynth.inference import Predictor, RuntimeConfig
    from cemsynth.inference.run import run_predict
    from cemsynth.io.manifest import read_manifest, write_manifest

    test_patients = set(read_splits(splits_path).patients["test"])
    rows = [r for r in read_manifest(manifest) if r.patient_id in test_patients]
    write_manifest(test_manifest, rows)
    predictor = Predictor.load(run_dir, RuntimeConfig(threads=threads), window)
    report = BatchReport(echo=console)
    summary = run_predict([test_manifest], predictor, synthetic_dir, "dicom", report, console)
    if report.failures:
        report.print_summary(console, what="images")
        raise CemsynthError(f"{len(report.failures)} test images could not be synthesized")
    console.print(
        f"{len(summary.outputs)} synthetic DICOM images in {synthetic_dir} "
        f"(model {predictor.identity.label()})",
        markup=False,
        highlight=False,
    )
    return run_dir / Path(predictor.identity.name).name


def evaluate_split(
    pred_dir: Path,
    manifest: Path,
    out: Path,
    splits_path: Path,
    bootstrap: int = DEMO_BOOTSTRAP,
    seed: int = DEMO_COHORT.seed,
    lpips: bool = True,
    console: Console | None = None,
    targets: Targets = DEMO_TARGETS,
    preprocess: PreprocessConfig | None = None,
) -> EvaluationResult:
    """``cemsynth evaluate`` on the test split, with a progress bar on ``console``; the
    verdict judges against ``targets``. ``preprocess``: None (predictions from
    :func:`synthesize_split`) takes the one in ``pred_dir/provenance.json``; a folder made
    otherwise needs it given."""
    from cemsynth.data.splits import read_splits
    from cemsynth.evaluation import EvaluationConfig, run_evaluation
    from cemsynth.progress import progress_bar

    config = EvaluationConfig(bootstrap_samples=bootstrap, seed=seed, lpips=lpips)
    console = console or Console(quiet=True)
    n_test = len(read_splits(splits_path).entries["test"])
    with progress_bar("evaluating", console=console) as bar:
        task = bar.add_task("evaluate", total=n_test)

        def advance(line: str) -> None:
            bar.advance(task)

        callback: Callable[[str], None] = advance
        return run_evaluation(
            pred_dir,
            manifest,
            out,
            preprocess,
            config,
            split="test",
            splits_path=splits_path,
            progress=callback,
            targets=targets,
        )


# --- the closing summary -----------------------------------------------------------------------


def _metric(summary: dict[str, Any], name: str) -> float:
    value = (summary.get("metrics", {}).get(name) or {}).get("mean")
    return float(value) if isinstance(value, int | float) else math.nan


def print_result(console: Console, result: DemoResult, seconds: float) -> None:
    """The headline table, the verdict's criteria and where the outputs are."""
    summary = result.summary
    dprime = summary.get("detectability", {}).get("sources", {})
    table = Table(
        title="test split: against the clinical RC, inside the breast",
        caption="MAE lower is better; PSNR, SSIM and CHO d' higher",
    )
    table.add_column("image")
    for name in ("MAE", "PSNR dB", "SSIM", "d'"):
        table.add_column(name, justify="right")
    for source in SHOWN_SOURCES:
        if not math.isfinite(_metric(summary, f"{source}_mae_breast")):
            continue  # no ideal RC outside the phantom
        d = (dprime.get(source) or {}).get("dprime")
        table.add_row(
            SHORT_LABELS[source],
            f"{_metric(summary, f'{source}_mae_breast'):.4f}",
            f"{_metric(summary, f'{source}_psnr_breast'):.2f}",
            f"{_metric(summary, f'{source}_ssim_breast'):.4f}",
            f"{d:.2f}" if isinstance(d, int | float) else "",
        )
    console.print(table)
    lines = []
    halo = summary.get("halo", {})
    if halo.get("n_halo_cases"):
        lines.append(
            f"halo artifact in {halo['n_halo_cases']} clinical test images; gone in "
            f"{halo['n_removed']} of their synthetic ones"
        )
    lesion = summary.get("lesion_contrast", {})
    if lesion.get("n_images"):
        lines.append(
            f"enhancing lesions ({lesion['n_images']} images): CNR {lesion['synthetic']:.3f} "
            f"synthetic, {lesion['clinical']:.3f} clinical; brighter than their "
            f"surroundings in {lesion['share_brighter']:.0%} of the synthetic images"
        )
    for line in lines:
        console.print(line, markup=False, highlight=False)
    marks = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[yellow]n/a[/] "}
    for criterion in result.verdict.criteria:
        console.print(f"{marks[criterion.passed]} {criterion.name}: ", end="")
        console.print(criterion.text, markup=False, highlight=False)
    reference = result.reference_verdict
    console.print(
        f"against the reference targets of cemsynth evaluate: {reference.status} "
        f"({len(reference.criteria) - len(reference.failed())} of {len(reference.criteria)} "
        "criteria met)",
        markup=False,
        highlight=False,
    )
    demo = summary["demo"]
    training = demo["training"]
    lines = [
        f"{training['steps']} training steps in {training['seconds']:.0f} s; window stride "
        f"{demo['stride']} (predict's default: {_default_stride()})",
        f"report:          {result.report / 'report.html'}",
        f"summary:         {result.report / 'summary.json'}",
        f"synthetic DICOM: {result.synthetic}",
        f"checkpoint:      {result.checkpoint}",
    ]
    for line in lines:
        console.print(line, markup=False, highlight=False)
    status = result.verdict.status
    colour = "green" if result.verdict.passed else "red"
    console.print(f"verdict: [{colour}]{status}[/] (demo targets); demo done in {seconds:.0f} s")


def _default_stride() -> int:
    from cemsynth.inference import SlidingWindowConfig

    return SlidingWindowConfig().stride

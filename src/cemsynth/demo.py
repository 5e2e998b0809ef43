"""``cemsynth demo``: the main job end to end on the built-in phantom, in minutes on a CPU.

Stages (each the library call behind one ``cemsynth`` command): phantom -> index -> preprocess
-> split -> train (the ``small`` preset within a wall-clock budget) -> synthesize the test
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
carries a ``demo`` section (settings, stage times, headline numbers, the learning criteria
with pass/fail). An interrupted or failed demo leaves ``DEMO_INCOMPLETE`` and no ``report/``.

The learning criteria (:func:`check_learning`) are shared with the golden test: on the test
split, the synthetic images must beat the trivial baselines (LE mapped to the RC window; a
flat image at the train split's mean RC) on masked MAE and SSIM by a margin, and enhancing
lesions must be brighter than their surroundings in the synthetic images.
"""

from __future__ import annotations

import json
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

from cemsynth.errors import CemsynthError
from cemsynth.io.messages import counted

if TYPE_CHECKING:
    from cemsynth.evaluation import EvaluationResult
    from cemsynth.evaluation.case import CaseResult
    from cemsynth.preprocess.config import PreprocessConfig
    from cemsynth.training import TrainConfig, TrainResult

# --- the demo's defaults: the one home of each ------------------------------------------------

DEMO_OUT = Path("demo-output")
DEMO_PATIENTS = 10
"""Phantom patients (4 images each); split 70/10/20 by patient."""
DEMO_SEED = 0
DEMO_MINUTES = 8.0
"""Wall-clock budget of the whole demo; training gets what the other stages leave."""
MIN_PATIENTS = 3
"""One patient each for train, validation and test."""

# The cohort: 0.1 mm detector read out with 4 x 4 binning (712 x 598 at 0.4 mm), preprocessed
# at 0.4 mm (the grid the paper's model works on), so preprocessing does not resample.
DEMO_PIXEL_MM = 0.1
DEMO_SIZE = "small"
DEMO_PRESET = "phantom"

DEMO_STRIDE = 32
"""Sliding-window stride (pixels). The paper's 16 (``predict``'s default) evaluates 3.3-3.7x
the windows; on two demo test images its output differed from stride 32's by 0.01 on average
inside the breast ([-1, 1] RC scale) and scored the same MAE against the clinical RC to three
decimals. 32 keeps synthesis within the CPU budget."""

DEMO_TRAIN_PRESET = "small"
DEMO_TRAIN_CHANGES: dict[str, Any] = {
    # No identity term: G(RC) ~ RC pulls against the paired LE -> RC mapping and costs two of
    # the step's six generator passes.
    "loss_identity": 0.0,
    # The paired MAE/SSIM term (10) dominates a paired problem; a light adversarial and cycle
    # term keep the cycle-GAN's form without the discriminator (which wins within 50 steps)
    # steering a short run towards noise texture. Measured in docs/results.md.
    "loss_adversarial": 0.1,
    "loss_cycle": 1.0,
    "lr_generator": 1e-3,
    # At this learning rate the generator swings from step to step (lesion contrast of
    # checkpoints 50 steps apart: -0.13 to 0.87); its weight average does not (0.33 to 0.75).
    "ema_decay": 0.99,
    "val_every": 50,
    "val_patches": 64,  # a steadier best.pt choice than the preset's 16
    "checkpoint_every": 100,
    "tensorboard": False,
}
"""Changes to the ``small`` training preset for the demo (measured in docs/results.md)."""
DEMO_MAX_STEPS = 5000
"""Upper bound on training steps; on a CPU the time budget ends training first."""

DEMO_BOOTSTRAP = 200
"""Bootstrap resamples of the evaluation's intervals (the ``evaluate`` default is 1000)."""

# Seconds kept back from training for synthesis and evaluation (measured on 2 busy cores:
# about 3 s per test image to synthesize and 4 s to evaluate, plus loading and the report).
RESERVE_FIXED_S = 20.0
RESERVE_PER_TEST_IMAGE_S = 7.0
MIN_TRAIN_S = 60.0
"""Training gets at least this long even when the budget is spent (the demo then says so)."""

# --- the learning criteria (shared with tests/test_golden_run.py) ------------------------------

MAE_MARGIN = 0.15
"""Synthetic masked MAE must be at most (1 - this) x the best baseline's."""
SSIM_MARGIN = 0.01
"""Synthetic masked SSIM must exceed the best baseline's by at least this (SSIM units). The
RC's quantum noise caps SSIM: a flat image at each breast's own mean scores about 0.18 on
halo-free phantom images and the clinical RC smoothed with a 2-pixel Gaussian about 0.25."""
LESION_CNR_MIN = 0.1
"""Mean lesion CNR over enhancing lesions in the synthetic images must be at least this."""

CRITERIA_BASELINES = ("baseline_le", "baseline_flat_train")
"""The trivial baselines the model must beat (the flat-at-own-mean oracle is reported only)."""
SHOWN_SOURCES = ("synthetic", *CRITERIA_BASELINES, "baseline_flat_own")
SHORT_LABELS = {
    "synthetic": "synthetic (this model)",
    "baseline_le": "LE in the RC window",
    "baseline_flat_train": "flat at train mean",
    "baseline_flat_own": "flat at own mean (oracle)",
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
    ("train", "train the cycle-GAN (small preset, demo loss weights)"),
    ("synthesize", "synthesize the test split as DICOM on the original grid"),
    ("evaluate", "metrics against the clinical RC, baselines, HTML report"),
)


class DemoInterrupted(CemsynthError):
    """Ctrl-C (or SIGTERM during training) stopped the demo; the folder is marked incomplete."""


@dataclass(frozen=True)
class DemoSettings:
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

    patients: int = DEMO_PATIENTS
    seed: int = DEMO_SEED
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


@dataclass(frozen=True)
class Criterion:
    """One learning criterion: ``value`` compared with ``threshold``.

    ``passed`` is None when the criterion cannot be assessed (e.g. no enhancing lesion in the
    test split); ``text`` says what was compared, with the numbers.
    """

    name: str
    text: str
    value: float
    threshold: float
    passed: bool | None


@dataclass(frozen=True)
class LearningCheck:
    """Headline numbers of an evaluation and the learning criteria.

    Attributes:
        scores: population ("all", "halo_free") -> source -> {"mae_breast", "ssim_breast"}:
            means over that population's test images, windowed [-1, 1] RC scale, inside the
            breast.
        n_images: population -> number of images.
        lesion: lesion CNR over enhancing lesions: ``n`` images, mean ``synthetic`` and
            ``clinical`` CNR, ``share_brighter`` (synthetic CNR > 0).
        criteria: the criteria, in the order MAE, SSIM, lesion.
    """

    scores: dict[str, dict[str, dict[str, float]]]
    n_images: dict[str, int]
    lesion: dict[str, float]
    criteria: list[Criterion]

    @property
    def passed(self) -> bool:
        """Every criterion passed (one that cannot be assessed does not pass)."""
        return all(c.passed is True for c in self.criteria)

    def failed(self) -> list[str]:
        """Names of the criteria that did not pass."""
        return [c.name for c in self.criteria if c.passed is not True]

    def to_dict(self) -> dict[str, Any]:
        return {
            "scores": self.scores,
            "n_images": self.n_images,
            "lesion": self.lesion,
            "criteria": [asdict(c) for c in self.criteria],
            "passed": self.passed,
        }


@dataclass
class DemoResult:
    """Where a finished demo put things, and what it measured."""

    out: Path
    report: Path
    synthetic: Path
    checkpoint: Path
    manifest: Path
    splits: Path
    check: LearningCheck
    summary: dict[str, Any]
    stage_seconds: dict[str, float] = field(default_factory=dict)


# --- the learning criteria ---------------------------------------------------------------------


def is_halo_free(case: CaseResult) -> bool:
    """The clinical RC has no halo: the manifest's ``halo`` truth, else the evaluation's
    halo index (clinical index below its threshold)."""
    if case.record.halo is not None:
        return not case.record.halo
    return case.halo_case is False


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def check_learning(result: EvaluationResult) -> LearningCheck:
    """Headline numbers and the learning criteria of an evaluation of the test split.

    The pixel criteria are scored on the halo-free test images: the halo is a random
    scatter-correction error of the clinical RC (in the phantom drawn per breast, so no model
    can predict it from LE), which the paper's model removes; on halo images the clinical RC
    is the wrong reference. All-image numbers are reported beside them.

    - MAE: synthetic masked MAE <= (1 - :data:`MAE_MARGIN`) x the lower of the two trivial
      baselines' (LE in the RC window; flat at the train mean).
    - SSIM: synthetic masked SSIM >= the higher baseline SSIM + :data:`SSIM_MARGIN`.
    - Lesion: mean lesion CNR (``(mean_L - mean_B) / (std_L + std_B)``, background 3-10 mm
      around the lesion) over the images of enhancing lesions >= :data:`LESION_CNR_MIN`.

    A criterion without images to score is not assessable (``passed`` None), which does not
    pass.
    """
    cases = result.cases
    populations = {"all": list(cases), "halo_free": [c for c in cases if is_halo_free(c)]}
    scores = {
        population: {
            source: {
                metric: _mean([c.values.get(f"{source}_{metric}", math.nan) for c in members])
                for metric in ("mae_breast", "ssim_breast")
            }
            for source in SHOWN_SOURCES
        }
        for population, members in populations.items()
    }
    n_images = {population: len(members) for population, members in populations.items()}
    scored = scores["halo_free"]
    model = scored["synthetic"]
    best_mae = min(scored[b]["mae_breast"] for b in CRITERIA_BASELINES)
    best_ssim = max(scored[b]["ssim_breast"] for b in CRITERIA_BASELINES)
    mae_limit = (1.0 - MAE_MARGIN) * best_mae
    ssim_limit = best_ssim + SSIM_MARGIN
    assessable = n_images["halo_free"] > 0
    where = f"{n_images['halo_free']} halo-free images"
    criteria = [
        Criterion(
            "mae",
            f"MAE {model['mae_breast']:.4f} <= {mae_limit:.4f} = {1 - MAE_MARGIN:.2f} x best "
            f"baseline ({best_mae:.4f}), {where}",
            model["mae_breast"],
            mae_limit,
            _passes(model["mae_breast"] <= mae_limit, model["mae_breast"], mae_limit)
            if assessable
            else None,
        ),
        Criterion(
            "ssim",
            f"SSIM {model['ssim_breast']:.4f} >= {ssim_limit:.4f} = best baseline "
            f"({best_ssim:.4f}) + {SSIM_MARGIN}, {where}",
            model["ssim_breast"],
            ssim_limit,
            _passes(model["ssim_breast"] >= ssim_limit, model["ssim_breast"], ssim_limit)
            if assessable
            else None,
        ),
    ]
    pairs = [
        (case.values["synthetic_lesion_cnr"], case.values["clinical_lesion_cnr"])
        for case in cases
        if case.record.lesion_enhancing
        and math.isfinite(case.values.get("synthetic_lesion_cnr", math.nan))
        and math.isfinite(case.values.get("clinical_lesion_cnr", math.nan))
    ]
    n = len(pairs)
    synthetic_cnr = _mean([p[0] for p in pairs])
    lesion = {
        "n": float(n),
        "synthetic": synthetic_cnr,
        "clinical": _mean([p[1] for p in pairs]),
        "share_brighter": sum(1 for p in pairs if p[0] > 0) / n if n else math.nan,
    }
    criteria.append(
        Criterion(
            "lesion",
            f"lesion CNR {synthetic_cnr:.3f} >= {LESION_CNR_MIN} (mean of {n} "
            f"enhancing-lesion images; clinical {lesion['clinical']:.3f})"
            if n
            else "no enhancing lesion with a lesion mask in the test split: not assessable",
            synthetic_cnr,
            LESION_CNR_MIN,
            _passes(synthetic_cnr >= LESION_CNR_MIN, synthetic_cnr, LESION_CNR_MIN) if n else None,
        )
    )
    return LearningCheck(scores=scores, n_images=n_images, lesion=lesion, criteria=criteria)


def _passes(ok: bool, value: float, threshold: float) -> bool:
    return bool(ok) and math.isfinite(value) and math.isfinite(threshold)


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


def _json_safe(value: Any) -> Any:
    """NaN and infinity -> None, numpy scalars -> Python, tuples -> lists, keys -> str."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    from cemsynth.io.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(_json_safe(data), indent=2) + "\n")


# --- the demo ----------------------------------------------------------------------------------


def demo_train_config(settings: DemoSettings) -> TrainConfig:
    """The ``small`` preset with :data:`DEMO_TRAIN_CHANGES`, the seed and the step bound."""
    from cemsynth.training import get_train_preset

    return replace(
        get_train_preset(DEMO_TRAIN_PRESET),
        **DEMO_TRAIN_CHANGES,
        max_steps=settings.max_steps,
        seed=settings.seed,
    )


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
    _write_json_atomic(
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


def _run_stages(
    out: Path,
    settings: DemoSettings,
    deadline: float | None,
    threads: int,
    stages: _Stages,
    console: Console,
) -> DemoResult:
    from cemsynth.batch import BatchReport, available_cpus
    from cemsynth.data.splits import SPLITS_NAME, SplitConfig, split_cache
    from cemsynth.index import index_folder, write_index
    from cemsynth.io.cache import build_cache
    from cemsynth.phantom.cohort import MANIFEST_NAME, write_cohort
    from cemsynth.phantom.config import PhantomConfig
    from cemsynth.preprocess.config import get_preset

    start = time.perf_counter()
    phantom_dir = out / "phantom"
    with stages.stage("phantom"):
        cohort = write_cohort(
            phantom_dir,
            n_patients=settings.patients,
            seed=settings.seed,
            pixel_mm=DEMO_PIXEL_MM,
            size=DEMO_SIZE,
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

    splits_path = cache_dir / SPLITS_NAME
    with stages.stage("split"):
        splits = split_cache(cache_dir, SplitConfig(seed=settings.seed))
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
            manifest, splits_path, test_manifest, run_dir, synthetic_dir, settings, threads, console
        )

    report_dir = out / REPORT_DIR
    partial = out / (REPORT_DIR + PARTIAL_SUFFIX)
    with stages.stage("evaluate"):
        from cemsynth.io.cache import open_cache

        evaluation = evaluate_split(
            synthetic_dir,
            manifest,
            partial,
            open_cache(cache_dir).config,
            splits_path,
            bootstrap=settings.bootstrap,
            seed=settings.seed,
            lpips=settings.lpips,
            console=console,
        )
        check = check_learning(evaluation)
        console.print(
            f"{len(evaluation.cases)} test images scored against their clinical RC "
            f"({len(evaluation.skipped)} skipped)",
            markup=False,
            highlight=False,
        )

    summary = dict(evaluation.summary)
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
        "stride_note": "the paper's stride is 16 (cemsynth predict's default); the demo uses "
        f"{settings.stride} to fit its CPU budget",
        "outputs": {
            "report": str(report_dir / "report.html"),
            "synthetic": str(synthetic_dir),
            "checkpoint": str(checkpoint),
        },
        "criteria_settings": {
            "mae_margin": MAE_MARGIN,
            "ssim_margin": SSIM_MARGIN,
            "lesion_cnr_min": LESION_CNR_MIN,
            "baselines": list(CRITERIA_BASELINES),
        },
        **check.to_dict(),
    }
    # summary.json last and atomically, then the whole folder into place at once
    from cemsynth.evaluation.run import SUMMARY_NAME

    _write_json_atomic(partial / SUMMARY_NAME, summary)
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
        check=check,
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
    settings: DemoSettings,
    threads: int,
    console: Console,
) -> Path:
    """Synthesize the test split's LE images as DICOM into ``synthetic_dir``.

    Writes ``test_manifest`` (the test rows of ``manifest``), loads the model in ``run_dir``
    (``best.pt``, else ``last.pt``) once and runs ``cemsynth predict``'s batch over it with
    ``settings.stride``. Returns the checkpoint used. Raises CemsynthError if an image fails.
    """
    from cemsynth.batch import BatchReport
    from cemsynth.data.splits import read_splits
    from cemsynth.inference import Predictor, RuntimeConfig, SlidingWindowConfig
    from cemsynth.inference.run import run_predict
    from cemsynth.io.manifest import read_manifest, write_manifest

    test_patients = set(read_splits(splits_path).patients["test"])
    rows = [r for r in read_manifest(manifest) if r.patient_id in test_patients]
    write_manifest(test_manifest, rows)
    predictor = Predictor.load(
        run_dir,
        RuntimeConfig(threads=threads),
        SlidingWindowConfig(stride=settings.stride),
    )
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
    preprocess: PreprocessConfig,
    splits_path: Path,
    bootstrap: int = DEMO_BOOTSTRAP,
    seed: int = DEMO_SEED,
    lpips: bool = True,
    console: Console | None = None,
) -> EvaluationResult:
    """``cemsynth evaluate`` on the test split, with a progress bar on ``console``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    from cemsynth.data.splits import read_splits
    from cemsynth.evaluation import EvaluationConfig, run_evaluation

    config = EvaluationConfig(bootstrap_samples=bootstrap, seed=seed, lpips=lpips)
    console = console or Console(quiet=True)
    n_test = len(read_splits(splits_path).entries["test"])
    with Progress(
        "evaluating", BarColumn(), MofNCompleteColumn(), console=console, transient=True
    ) as bar:
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
        )


# --- the closing summary -----------------------------------------------------------------------


def print_result(console: Console, result: DemoResult, seconds: float) -> None:
    """The headline table, the criteria and where the outputs are."""
    check = result.check
    n_all, n_free = check.n_images["all"], check.n_images["halo_free"]
    table = Table(
        title="test split: synthetic vs clinical RC inside the breast",
        caption=f"MAE lower is better, SSIM higher; halo-free: {n_free} images (the criteria), "
        f"all: {n_all}",
    )
    table.add_column("image")
    for name in ("MAE\nhalo-free", "SSIM\nhalo-free", "MAE\nall", "SSIM\nall"):
        table.add_column(name, justify="right")
    for source in SHOWN_SOURCES:
        free, every = check.scores["halo_free"][source], check.scores["all"][source]
        table.add_row(
            SHORT_LABELS[source],
            f"{free['mae_breast']:.4f}",
            f"{free['ssim_breast']:.4f}",
            f"{every['mae_breast']:.4f}",
            f"{every['ssim_breast']:.4f}",
        )
    console.print(table)
    lines = []
    halo = result.summary.get("halo", {})
    if halo.get("n_halo_cases"):
        lines.append(
            f"halo artifact in {halo['n_halo_cases']} clinical test images; gone in "
            f"{halo['n_removed']} of their synthetic ones (as with the paper's model)"
        )
    lesion = check.lesion
    if lesion["n"]:
        lines.append(
            f"enhancing lesions ({lesion['n']:.0f} images): CNR {lesion['synthetic']:.3f} "
            f"synthetic, {lesion['clinical']:.3f} clinical; brighter than their "
            f"surroundings in {lesion['share_brighter']:.0%} of the synthetic images"
        )
    for line in lines:
        console.print(line, markup=False, highlight=False)
    marks = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[yellow]n/a[/] "}
    for criterion in check.criteria:
        console.print(f"{marks[criterion.passed]} {criterion.name}: ", end="")
        console.print(criterion.text, markup=False, highlight=False)
    demo = result.summary["demo"]
    training = demo["training"]
    lines = [
        f"{training['steps']} training steps in {training['seconds']:.0f} s; window stride "
        f"{demo['stride']} (the paper's and predict's: 16)",
        f"report:          {result.report / 'report.html'}",
        f"summary:         {result.report / 'summary.json'}",
        f"synthetic DICOM: {result.synthetic}",
        f"checkpoint:      {result.checkpoint}",
    ]
    for line in lines:
        console.print(line, markup=False, highlight=False)
    verdict = "[green]the model learned[/]" if check.passed else "[red]learning criteria not met[/]"
    console.print(f"{verdict}; demo done in {seconds:.0f} s")

"""``cemsynth demo``: the main job on the built-in phantom.

The full job is phantom -> index -> preprocess -> split -> train -> synthesize -> evaluate ->
report. Every stage that is built runs here, on a small phantom cohort; the stages still being
built are listed as such, so a newcomer sees what runs today and what is coming.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cemsynth.batch import BatchReport, available_cpus
from cemsynth.data.splits import SplitConfig, split_cache
from cemsynth.errors import CemsynthError
from cemsynth.index import index_folder, write_index
from cemsynth.io.cache import build_cache
from cemsynth.phantom.cohort import MANIFEST_NAME, write_cohort
from cemsynth.phantom.config import PhantomConfig
from cemsynth.preprocess.config import get_preset

# The demo cohort: detector pitch, read-out size and preprocessing preset.
DEMO_PIXEL_MM = 0.1
DEMO_SIZE = "small"
DEMO_PRESET = "phantom"

# (stage, the cemsynth command that runs it, what it does)
STAGES = (
    ("phantom", "phantom", "simulate CEM exams with ground truth"),
    ("index", "index", "pair low-energy and recombined images"),
    ("preprocess", "preprocess", "mask, crop, resample, window; cache for training"),
    ("split", "split", "patient-level train/validation/test split"),
    ("train", "train", "train the cycle-GAN (small preset)"),
    ("synthesize", "predict", "synthesize the test split as DICOM"),
    ("evaluate", "evaluate", "metrics, baselines and the HTML report"),
)
DEMO_RUNS = ("phantom", "index", "preprocess", "split")


def built_commands() -> set[str]:
    """Names of the commands the ``cemsynth`` CLI offers now."""
    from cemsynth.cli import app

    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    return names | {g.name for g in app.registered_groups if g.name}


def run_demo(out: Path, n_patients: int, seed: int, console: Console | None = None) -> None:
    """Run every built stage on a small phantom cohort under ``out``."""
    console = console or Console()
    if n_patients < 3:
        raise CemsynthError(f"--patients must be at least 3 for the demo, got {n_patients}")
    out = Path(out)
    start = time.perf_counter()
    console.rule("[bold]cemsynth demo")

    phantom_dir = out / "phantom"
    cohort = write_cohort(
        phantom_dir,
        n_patients=n_patients,
        seed=seed,
        pixel_mm=DEMO_PIXEL_MM,
        size=DEMO_SIZE,
        config=PhantomConfig(),
        workers=0,
        progress=True,
    )
    console.print(
        f"phantom: {cohort.n_pairs} LE/RC pairs with truth in {phantom_dir} "
        f"({cohort.seconds:.1f} s)"
    )

    report = BatchReport(echo=console)
    indexed = index_folder(phantom_dir, rules="phantom", report=report)
    manifest = out / MANIFEST_NAME
    write_index(indexed, manifest)
    console.print(f"index: {len(indexed.pairs)} pairs -> {manifest}")

    cache_dir = out / "cache"
    cache = build_cache(
        indexed.pairs,
        cache_dir,
        get_preset(DEMO_PRESET),
        report,
        workers=available_cpus(),
        manifest_path=manifest,
        progress_console=console,
    )
    console.print(
        f"preprocess: {len(cache.entries)} pairs cached in {cache_dir} ({cache.seconds:.1f} s)"
    )
    splits = split_cache(cache_dir, SplitConfig(seed=seed))
    sizes = ", ".join(f"{name} {len(keys)}" for name, keys in splits.entries.items())
    console.print(f"split: {sizes} pairs (by patient)")
    if report.failures:
        report.print_summary(console, what="files")
        raise CemsynthError(f"{len(report.failures)} demo inputs failed; see the list above")

    commands = built_commands()
    table = Table(title="pipeline stages")
    table.add_column("stage")
    table.add_column("status")
    table.add_column("what it does")
    for stage, command, what in STAGES:
        if stage in DEMO_RUNS:
            status = "[green]ran"
        elif command in commands:
            status = f"[yellow]built; see `cemsynth {command} --help`"
        else:
            status = "[red]not built yet"
        table.add_row(stage, status, what)
    console.print(table)
    console.print(f"outputs in {out}; done in {time.perf_counter() - start:.1f} s")

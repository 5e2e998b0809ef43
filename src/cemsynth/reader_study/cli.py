"""``cemsynth reader-study``: build a blinded study, serve the reading app, export, statistics.

Heavy imports (pydicom, FastAPI, SciPy) happen inside the commands so that ``--help`` is fast.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer

from cemsynth.errors import CemsynthError
from cemsynth.reader_study.defaults import (
    BOOTSTRAP_SAMPLES,
    BOOTSTRAP_SEED,
    BPE_UNIT,
    HOST,
    PORT,
    TOKEN_TTL_HOURS,
    WASHOUT_DAYS,
)

reader_study_app = typer.Typer(
    name="reader-study",
    help="Blinded reader study: build sessions, serve the reading app, compute statistics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@reader_study_app.command("build")
def build(
    manifest: Annotated[
        Path,
        typer.Option(
            "--manifest",
            help="CSV with patient_id, study_uid, laterality, view, le_path, rc_path, "
            "lesion_present, bpe_grade.",
        ),
    ],
    synthetic: Annotated[
        Path,
        typer.Option(
            "--synthetic",
            help="Folder of synthetic DICOM: at the rc_path of each row, or listed in "
            "synthetic_manifest.csv (patient_id, laterality, view, path).",
        ),
    ],
    readers: Annotated[str, typer.Option("--readers", help="Reader names, e.g. R1,R2,R3.")],
    out: Annotated[Path, typer.Option("--out", help="New study folder.")],
    clinical: Annotated[
        Path | None,
        typer.Option(
            "--clinical",
            help="Folder the manifest's rc_path is relative to (default: the manifest's folder).",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Random seed (default: drawn and recorded in key/build.json)."),
    ] = None,
    washout_days: Annotated[
        int, typer.Option("--washout-days", help="Days between a reader's two sessions.")
    ] = WASHOUT_DAYS,
    start: Annotated[
        str | None,
        typer.Option("--start", help="When session 1 opens, ISO 8601 (default: now; UTC)."),
    ] = None,
) -> None:
    """Make de-identified copies, two blinded sessions per reader and a sealed key."""
    from cemsynth.reader_study.build import build_study
    from cemsynth.reader_study.study import parse_time

    opens = None
    if start is not None:
        try:
            opens = parse_time(start)
        except ValueError as exc:
            raise CemsynthError(f"--start {start!r} is not an ISO 8601 time") from exc
    result = build_study(
        manifest,
        manifest.parent if clinical is None else clinical,
        synthetic,
        readers.split(","),
        out,
        seed=seed,
        washout_days=washout_days,
        start=opens,
    )
    typer.echo(
        f"built {result.root}: {result.n_breasts} breasts, {result.n_cases} cases, "
        f"{result.n_images} images; credentials (admin only): {result.credentials_path}"
    )


@reader_study_app.command("serve")
def serve(
    study: Annotated[Path, typer.Argument(help="Study folder made by 'reader-study build'.")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = HOST,
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = PORT,
    token_hours: Annotated[
        float, typer.Option("--token-hours", help="Sign-in lifetime in hours.")
    ] = TOKEN_TTL_HOURS,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Listen on a non-loopback address (plain HTTP: put TLS in front of it).",
        ),
    ] = False,
) -> None:
    """Run the reading app until interrupted (Ctrl-C)."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not allow_remote:
        raise CemsynthError(
            f"--host {host} is not a loopback address; add --allow-remote to serve on a network"
        )
    if not 0 < port < 65536:
        raise CemsynthError(f"--port must be in 1..65535, got {port}")
    if token_hours <= 0:
        raise CemsynthError(f"--token-hours must be > 0, got {token_hours}")
    try:
        import uvicorn

        from cemsynth.reader_study.server import create_app
    except ImportError as exc:
        raise CemsynthError(
            f"the reading app needs the 'reader-study' extra ({exc.name} is missing): "
            "pip install 'cemsynth[reader-study]'"
        ) from exc

    app = create_app(study, token_ttl_hours=token_hours)
    typer.echo(f"reader study at http://{host}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


@reader_study_app.command("export")
def export(
    study: Annotated[Path, typer.Argument(help="Study folder.")],
    out: Annotated[Path, typer.Option("--out", help="scores.csv to write.")],
) -> None:
    """Write scores.csv from the study's answers (admin; the same file as the app's export)."""
    from cemsynth.io.atomic import write_text_atomic
    from cemsynth.reader_study.export import scores_csv
    from cemsynth.reader_study.store import AnswerStore
    from cemsynth.reader_study.study import db_path, load_key, load_plan

    plan = load_plan(study)
    if not db_path(study).is_file():
        raise CemsynthError(f"{study}: no answers yet (the app has not been served)")
    answers = AnswerStore(db_path(study), plan.study_id).answers()
    write_text_atomic(out, scores_csv(answers, load_key(study)))
    typer.echo(f"wrote {len(answers)} answers to {out}")


@reader_study_app.command("stats")
def stats(
    scores: Annotated[Path, typer.Option("--scores", help="scores.csv (from the app).")],
    truth: Annotated[Path, typer.Option("--truth", help="truth.csv (STUDY/key/truth.csv).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    bpe_unit: Annotated[
        str, typer.Option("--bpe-unit", help="BPE per 'patient' (highest grade) or 'breast'.")
    ] = BPE_UNIT,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap resamples for the kappa interval.")
    ] = BOOTSTRAP_SAMPLES,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = BOOTSTRAP_SEED,
    readers: Annotated[
        str | None,
        typer.Option(
            "--readers", help="The study's readers, e.g. R1,R2,R3: answers of others are errors."
        ),
    ] = None,
) -> None:
    """Accuracy, sensitivity, specificity, BPE kappa and paired tests; JSON, CSV and HTML."""
    from cemsynth.reader_study.report import write_outputs
    from cemsynth.reader_study.stats import analyse, read_scores, read_truth

    truth_table = read_truth(truth)
    summary = analyse(
        read_scores(scores, truth_table, None if readers is None else readers.split(",")),
        truth_table,
        bpe_unit=bpe_unit,
        bootstrap_samples=bootstrap,
        bootstrap_seed=seed,
    )
    write_outputs(summary, out)
    mean = summary["mean_over_readers"]["lesion"]
    typer.echo(
        "lesion accuracy (mean over readers): "
        + ", ".join(f"{t} {100 * mean[t]['accuracy']:.1f}%" for t in mean)
        + f"; report: {out / 'report.html'}"
    )

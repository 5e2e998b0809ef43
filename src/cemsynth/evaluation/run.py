"""``cemsynth evaluate``: score every matched case, aggregate, write the report folder.

Output folder::

    REPORT_DIR/metrics.csv    one row per evaluated image, one column per metric
    REPORT_DIR/summary.json   aggregates, baselines, tests, breakdowns, verdict, skipped cases
    REPORT_DIR/report.html    self-contained report (inline PNG figures), opens offline

A case that cannot be scored (no prediction, unreadable file, size mismatch, no breast) is
skipped with its reason; the others are evaluated. :func:`run_evaluation` raises
:class:`~cemsynth.errors.CemsynthError` only when nothing could be evaluated (after writing
``summary.json`` with the reasons), or, before any work, when the preprocessing it is given
is not the one the predictions were made with (:func:`resolve_preprocess`).
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cemsynth import __version__
from cemsynth.errors import CemsynthError, InputFileError
from cemsynth.evaluation.case import (
    CHO_SOURCES,
    HALO_SOURCES,
    REGION_SOURCES,
    CaseResult,
    ChannelCache,
    case_name,
    evaluate_case,
    lesion_status,
    read_breast_mask,
)
from cemsynth.evaluation.config import (
    BASELINES,
    ORACLE_BASELINES,
    PREDICTION_SOURCES,
    SOURCE_LABELS,
    SYNTHETIC,
    EvaluationConfig,
)
from cemsynth.evaluation.criteria import PIXEL_METRICS, REFERENCE_TARGETS, Targets, judge
from cemsynth.evaluation.matching import PredictionFinder
from cemsynth.evaluation.observer import hotelling_dprime
from cemsynth.evaluation.stats import bootstrap_ci, pearson, summarise, wilcoxon_family
from cemsynth.imaging import FloatArray
from cemsynth.inference.provenance import PROVENANCE_NAME, Provenance, read_provenance
from cemsynth.io.atomic import write_text_atomic
from cemsynth.io.json_files import write_json
from cemsynth.io.manifest import PairRecord, read_manifest
from cemsynth.io.messages import internal_error
from cemsynth.preprocess.config import PreprocessConfig, load_preprocess_config

SUMMARY_FORMAT = "cemsynth-evaluation"
SUMMARY_VERSION = 1
METRICS_NAME = "metrics.csv"
SUMMARY_NAME = "summary.json"
REPORT_NAME = "report.html"
ID_COLUMNS = (
    "patient_id",
    "study_uid",
    "laterality",
    "view",
    "density",
    "bpe_grade",
    "lesion_status",
    "lesion_enhancing",
    "halo_truth",
    "halo_case",
    "prediction",
    "notes",
)
BREAKDOWN_METRICS = (
    "synthetic_mae_breast",
    "synthetic_psnr_breast",
    "synthetic_ssim_breast",
    "clinical_cnr",
    "synthetic_cnr",
    "clinical_halo",
    "synthetic_halo",
)


@dataclass(frozen=True)
class SkippedCase:
    """A manifest row that was not evaluated, and why (one line)."""

    patient_id: str
    laterality: str
    view: str
    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {
            "patient_id": self.patient_id,
            "laterality": self.laterality,
            "view": self.view,
            "path": self.path,
            "reason": self.reason,
        }


@dataclass
class EvaluationResult:
    """The evaluated cases, the skipped ones and the aggregate summary (``summary.json``)."""

    cases: list[CaseResult]
    skipped: list[SkippedCase]
    summary: dict[str, Any]
    out: Path


def select_records(
    records: Sequence[PairRecord], split: str | None, splits_path: Path | None
) -> tuple[list[PairRecord], list[PairRecord], str]:
    """``(evaluated rows, train rows, description)`` for the chosen split.

    Without ``splits_path`` every row is evaluated and there are no train rows.
    """
    if splits_path is None:
        if split is not None:
            raise CemsynthError("--split needs --splits (the splits.json made by cemsynth split)")
        return list(records), [], "all manifest rows (no split given)"
    from cemsynth.data.splits import SPLIT_NAMES, read_splits

    name = split or "test"
    if name not in SPLIT_NAMES:
        raise CemsynthError(f"unknown split {name!r}; valid: {', '.join(SPLIT_NAMES)}")
    splits = read_splits(splits_path)
    chosen = set(splits.patients[name])
    train = set(splits.patients["train"])
    selected = [r for r in records if r.patient_id in chosen]
    train_rows = [r for r in records if r.patient_id in train]
    return selected, train_rows, f"split {name!r} of {splits_path} ({len(chosen)} patients)"


def flat_value_from(
    rows: Sequence[PairRecord], preprocess: PreprocessConfig, config: EvaluationConfig
) -> tuple[float, int]:
    """Mean RC stored value inside the breast, pooled over pixels of up to
    ``train_mean_max_images`` rows (a seeded subsample); ``(value, images used)``.

    Unreadable rows are left out; NaN when none could be read.
    """
    from cemsynth.io.reader import read_image

    chosen = list(rows)
    if len(chosen) > config.train_mean_max_images:
        rng = np.random.default_rng(config.seed)
        picks = np.sort(rng.choice(len(chosen), config.train_mean_max_images, replace=False))
        chosen = [chosen[i] for i in picks]
    total, count, used = 0.0, 0, 0
    for row in chosen:
        try:
            le = read_image(row.le_path, row.pixel_spacing_mm)
            rc = read_image(row.rc_path, row.pixel_spacing_mm)
            if rc.shape != le.shape:
                continue
            breast, _ = read_breast_mask(row, le, preprocess)
        except InputFileError:
            continue
        total += float(np.sum(rc.array[breast], dtype=np.float64))
        count += int(breast.sum())
        used += 1
    return (total / count if count else math.nan), used


def _check_extras() -> None:
    import importlib.util

    missing = [name for name in ("statsmodels", "matplotlib") if not importlib.util.find_spec(name)]
    if missing:
        raise CemsynthError(
            f"cemsynth evaluate needs {' and '.join(missing)}: pip install 'cemsynth[evaluation]'"
        )


LpipsFunction = Callable[[FloatArray, list[FloatArray]], list[float]]


def _lpips_model(config: EvaluationConfig) -> tuple[LpipsFunction | None, str]:
    if not config.lpips:
        return None, "LPIPS: switched off"
    from cemsynth.evaluation.lpips import Lpips, LpipsUnavailable

    try:
        model = Lpips(config.lpips_net)
        return model.many, f"LPIPS ({config.lpips_net}, v0.1 linear layers)"
    except LpipsUnavailable as exc:
        return None, str(exc)


def resolve_preprocess(
    pred_dir: Path, given: PreprocessConfig | None
) -> tuple[PreprocessConfig, str, Provenance | None]:
    """The preprocessing to score ``pred_dir`` with, where it came from (words, for the
    report), and the folder's provenance (None without ``provenance.json``).

    A folder written by ``cemsynth predict`` records its preprocessing in ``provenance.json``:
    that is used, and a ``given`` one (``--preset``/``--config``) must have the same config
    hash, else CemsynthError names both. Without the file: ``given``, else the default
    preset (:func:`~cemsynth.preprocess.config.load_preprocess_config`).
    """
    provenance = read_provenance(pred_dir)
    if provenance is None:
        if given is not None:
            return given, "given (--preset/--config)", None
        default = load_preprocess_config(None)
        return default, f"default preset '{default.preset}' (no {PROVENANCE_NAME})", None
    if given is None:
        return provenance.preprocess_config, f"{PROVENANCE_NAME} of the predictions", provenance
    if given.config_hash() != provenance.preprocess_config_hash:
        raise CemsynthError(
            f"{pred_dir / PROVENANCE_NAME}: the predictions were made with preprocessing "
            f"{provenance.preprocessing_label()}, but evaluate was given '{given.preset}' "
            f"({given.config_hash()}); leave out --preset and --config to use the folder's"
        )
    return given, f"given, same as the {PROVENANCE_NAME} of the predictions", provenance


def run_evaluation(
    pred_dir: Path,
    manifest: Path,
    out: Path,
    preprocess: PreprocessConfig | None,
    config: EvaluationConfig,
    split: str | None = None,
    splits_path: Path | None = None,
    progress: Callable[[str], None] | None = None,
    write_report: bool = True,
    targets: Targets = REFERENCE_TARGETS,
    raise_unexpected: bool = False,
) -> EvaluationResult:
    """Evaluate the predictions in ``pred_dir`` against the manifest's clinical RC images.

    ``preprocess``: the masks and windows to score with; None: the prediction folder's own
    (its ``provenance.json``), else the default preset. One that differs from the folder's is
    refused (:func:`resolve_preprocess`). Writes ``metrics.csv``, ``summary.json`` and
    (``write_report``) ``report.html`` into ``out``; the verdict in both judges against
    ``targets``. Raises :class:`CemsynthError` when ``pred_dir`` is missing or nothing could
    be evaluated. An unexpected error on one case
    (a bug met on it) skips that case with a one-line reason and the others go on, unless
    ``raise_unexpected`` (``--debug``) lets it propagate with its traceback.
    """
    start = time.perf_counter()
    _check_extras()
    pred_dir, manifest, out = Path(pred_dir), Path(manifest), Path(out)
    if not pred_dir.is_dir():
        raise InputFileError(pred_dir, "prediction folder not found")
    preprocess, preprocess_source, provenance = resolve_preprocess(pred_dir, preprocess)
    records = read_manifest(manifest)
    selected, train_rows, selection = select_records(records, split, splits_path)
    finder = PredictionFinder(pred_dir, manifest)
    lpips, lpips_status = _lpips_model(config)

    if config.flat_value is not None:
        flat_value, flat_source = float(config.flat_value), "given (flat_value)"
    elif train_rows:
        flat_value, used = flat_value_from(train_rows, preprocess, config)
        flat_source = f"mean RC in the breast over {used} train-split images"
    else:
        flat_value, used = flat_value_from(selected, preprocess, config)
        flat_source = (
            f"mean RC in the breast over {used} evaluated images (no train split given: "
            "this mean has seen the evaluated images)"
        )
    if not math.isfinite(flat_value):
        flat_value = float(np.mean(preprocess.rc_window))
        flat_source = "middle of the RC window (no image could be read for a mean)"

    channels = ChannelCache(config)
    cases: list[CaseResult] = []
    skipped: list[SkippedCase] = []
    for index, record in enumerate(selected):
        path, how = finder.find(record)
        if path is None:
            skipped.append(SkippedCase(record.patient_id, record.laterality, record.view, "", how))
            continue
        try:
            case = evaluate_case(
                record, path, preprocess, config, flat_value, index, channels, lpips
            )
        except InputFileError as exc:
            skipped.append(
                SkippedCase(
                    record.patient_id, record.laterality, record.view, str(exc.path), exc.problem
                )
            )
            if progress is not None:
                progress(f"skipped {case_name(record)}: {exc.problem}")
            continue
        except Exception as exc:  # a bug met on one case: that case's line, the others go on
            if raise_unexpected:
                raise
            problem = internal_error(exc)
            skipped.append(
                SkippedCase(record.patient_id, record.laterality, record.view, str(path), problem)
            )
            if progress is not None:
                progress(f"skipped {case_name(record)}: {problem}")
            continue
        cases.append(case)
        if progress is not None:
            progress(f"{len(cases)}/{len(selected)} {case.name}")

    summary = summarise_cases(cases, skipped, config, targets)
    summary.update(
        {
            "inputs": {
                "predictions": str(pred_dir),
                "manifest": str(manifest),
                "selection": selection,
                "matching_rule": finder.rule,
                "manifest_rows": len(records),
                "selected_rows": len(selected),
            },
            "preprocess": preprocess.to_dict(),
            "preprocess_source": preprocess_source,
            "provenance": None if provenance is None else provenance.to_dict(),
            "config": config.to_dict(),
            "baselines": {
                "flat_train_value": flat_value,
                "flat_train_source": flat_source,
                "labels": {name: SOURCE_LABELS[name] for name in BASELINES},
                "oracles": list(ORACLE_BASELINES),
            },
            "lpips_status": lpips_status,
            "cemsynth_version": __version__,
            "seconds": round(time.perf_counter() - start, 2),
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / METRICS_NAME, metrics_csv(cases))
    write_json(out / SUMMARY_NAME, summary)
    result = EvaluationResult(cases=cases, skipped=skipped, summary=summary, out=out)
    if write_report and cases:
        from cemsynth.evaluation.report import write_html_report

        write_html_report(result, out / REPORT_NAME)
    if not cases:
        raise CemsynthError(
            f"nothing could be evaluated: all {len(selected)} selected rows were skipped "
            f"(reasons in {out / SUMMARY_NAME}); first: {skipped[0].reason if skipped else '-'}"
        )
    return result


# --- aggregation ------------------------------------------------------------------------------


def _column(cases: Sequence[CaseResult], name: str) -> list[float]:
    return [case.values.get(name, math.nan) for case in cases]


def metric_names(cases: Sequence[CaseResult]) -> list[str]:
    """Every metric name, in the order first measured."""
    names: list[str] = []
    for case in cases:
        for name in case.values:
            if name not in names:
                names.append(name)
    return names


def _dprime_of(
    cases: Sequence[CaseResult], indices: npt.NDArray[np.int64] | None, source: str, ridge: float
) -> tuple[float, int, int]:
    chosen = cases if indices is None else [cases[i] for i in indices]
    present = [c.rois_present[source] for c in chosen if len(c.rois_present[source])]
    absent = [c.rois_absent[source] for c in chosen if len(c.rois_absent[source])]
    if not present or not absent:
        return math.nan, sum(len(p) for p in present), sum(len(a) for a in absent)
    p, a = np.concatenate(present), np.concatenate(absent)
    return hotelling_dprime(p, a, ridge), len(p), len(a)


def detectability(cases: Sequence[CaseResult], config: EvaluationConfig) -> dict[str, Any]:
    """CHO d' per image type with patient-bootstrap intervals, and synthetic / clinical."""
    groups = [c.record.patient_id for c in cases]
    out: dict[str, Any] = {"sources": {}}
    for source in CHO_SOURCES:
        value, n_p, n_a = _dprime_of(cases, None, source, config.cho_ridge)
        low, high = (math.nan, math.nan)
        if math.isfinite(value):

            def statistic(idx: npt.NDArray[np.int64], s: str = source) -> float:
                return _dprime_of(cases, idx, s, config.cho_ridge)[0]

            low, high = bootstrap_ci(
                statistic,
                groups,
                config.bootstrap_samples,
                config.seed,
                config.confidence,
            )
        out["sources"][source] = {
            "dprime": value,
            "ci_low": low,
            "ci_high": high,
            "n_present": n_p,
            "n_absent": n_a,
        }
    clinical = out["sources"]["clinical"]["dprime"]
    synthetic = out["sources"][SYNTHETIC]["dprime"]

    def ratio(idx: npt.NDArray[np.int64] | None) -> float:
        c = _dprime_of(cases, idx, "clinical", config.cho_ridge)[0]
        s = _dprime_of(cases, idx, SYNTHETIC, config.cho_ridge)[0]
        return s / c if c and math.isfinite(c) and math.isfinite(s) else math.nan

    value = ratio(None)
    low, high = (math.nan, math.nan)
    if math.isfinite(value):
        low, high = bootstrap_ci(
            ratio, groups, config.bootstrap_samples, config.seed, config.confidence
        )
    out["ratio_synthetic_to_clinical"] = {"value": value, "ci_low": low, "ci_high": high}
    out["assessable"] = math.isfinite(clinical) and math.isfinite(synthetic)
    return out


def lesion_contrast_summary(cases: Sequence[CaseResult]) -> dict[str, Any]:
    """Mean lesion-to-ring CNR over images of enhancing lesions, synthetic and clinical.

    Only images whose lesion CNR is finite in both count; ``share_brighter`` is the share of
    them where the synthetic lesion is brighter than its ring (CNR > 0).
    """
    pairs = [
        (c.values["synthetic_lesion_cnr"], c.values["clinical_lesion_cnr"])
        for c in cases
        if c.record.lesion_enhancing
        and math.isfinite(c.values.get("synthetic_lesion_cnr", math.nan))
        and math.isfinite(c.values.get("clinical_lesion_cnr", math.nan))
    ]
    n = len(pairs)
    return {
        "n_images": n,
        "synthetic": float(np.mean([p[0] for p in pairs])) if n else math.nan,
        "clinical": float(np.mean([p[1] for p in pairs])) if n else math.nan,
        "share_brighter": sum(1 for p in pairs if p[0] > 0) / n if n else math.nan,
    }


def summarise_cases(
    cases: Sequence[CaseResult],
    skipped: Sequence[SkippedCase],
    config: EvaluationConfig,
    targets: Targets = REFERENCE_TARGETS,
) -> dict[str, Any]:
    """Every aggregate of ``summary.json`` except inputs and settings; the verdict judges
    them against ``targets`` (:func:`cemsynth.evaluation.criteria.judge`)."""
    groups = [c.record.patient_id for c in cases]
    b, seed, conf = config.bootstrap_samples, config.seed, config.confidence
    metrics = {
        name: summarise(_column(cases, name), groups, b, seed, conf).to_dict()
        for name in metric_names(cases)
    }
    paper: dict[str, Any] = {"mae": {}, "ssim": {}}
    for kind in ("mae", "ssim"):
        reference = _column(cases, f"paper_{kind}_le_clinical")
        for source in PREDICTION_SOURCES:
            paper[kind][source] = pearson(
                reference, _column(cases, f"paper_{kind}_le_{source}"), conf
            ).to_dict()
    detect = detectability(cases, config) if cases else {"sources": {}, "assessable": False}

    halo_cases = [c for c in cases if c.halo_case]
    removed = [
        c
        for c in halo_cases
        if math.isfinite(c.values["synthetic_halo"])
        and c.values["synthetic_halo"] < config.halo_threshold
    ]
    halo = {
        "threshold": config.halo_threshold,
        "n_halo_cases": len(halo_cases),
        "n_removed": len(removed),
        "share_removed": len(removed) / len(halo_cases) if halo_cases else math.nan,
        "halo_cases_from": "manifest halo column where given, else clinical index > threshold",
    }
    lesion_free = [c for c in cases if c.record.lesion_present is False]
    blobs = {
        "n_lesion_free": len(lesion_free),
        "synthetic_total": float(np.nansum(_column(lesion_free, "synthetic_blobs"))),
        "clinical_total": float(np.nansum(_column(lesion_free, "clinical_blobs"))),
        "synthetic_images_with_blobs": int(
            sum(1 for v in _column(lesion_free, "synthetic_blobs") if v > 0)
        ),
    }
    comparisons: list[tuple[str, str, str, Sequence[float], Sequence[float]]] = []
    for metric in ("cnr", "mean_adipose", "mean_fgt", "lesion_cnr"):
        comparisons.append(
            (
                metric,
                SYNTHETIC,
                "clinical",
                _column(cases, f"synthetic_{metric}"),
                _column(cases, f"clinical_{metric}"),
            )
        )
    comparisons.append(
        (
            "halo",
            SYNTHETIC,
            "clinical",
            _column(cases, "synthetic_halo"),
            _column(cases, "clinical_halo"),
        )
    )
    for kind in ("mae", "ssim"):
        comparisons.append(
            (
                f"paper_{kind}_le",
                SYNTHETIC,
                "clinical",
                _column(cases, f"paper_{kind}_le_synthetic"),
                _column(cases, f"paper_{kind}_le_clinical"),
            )
        )
    for baseline in BASELINES:
        for suffix, _, _ in PIXEL_METRICS:
            comparisons.append(
                (
                    suffix,
                    SYNTHETIC,
                    baseline,
                    _column(cases, f"synthetic_{suffix}"),
                    _column(cases, f"{baseline}_{suffix}"),
                )
            )
    tests = [t.to_dict() for t in wilcoxon_family(comparisons, config.fdr_alpha)]

    breakdowns: dict[str, Any] = {}
    group_tests: list[tuple[str, str, str, Sequence[float], Sequence[float]]] = []
    for key, label_of in (
        ("density", lambda c: c.record.density or "unknown"),
        ("bpe_grade", lambda c: c.record.bpe_grade or "unknown"),
        ("lesion_status", lambda c: lesion_status(c.record)),
    ):
        table: dict[str, Any] = {}
        for label in sorted({label_of(c) for c in cases}):
            members = [c for c in cases if label_of(c) == label]
            member_groups = [c.record.patient_id for c in members]
            table[label] = {
                "n": len(members),
                **{
                    metric: summarise(
                        _column(members, metric), member_groups, b, seed, conf
                    ).to_dict()
                    for metric in BREAKDOWN_METRICS
                },
            }
            group_tests.append(
                (
                    f"cnr [{key}={label}]",
                    SYNTHETIC,
                    "clinical",
                    _column(members, "synthetic_cnr"),
                    _column(members, "clinical_cnr"),
                )
            )
        breakdowns[key] = table
    breakdown_tests = [t.to_dict() for t in wilcoxon_family(group_tests, config.fdr_alpha)]

    notes = [{"case": c.name, "note": note} for c in cases for note in c.notes]
    summary: dict[str, Any] = {
        "format": SUMMARY_FORMAT,
        "version": SUMMARY_VERSION,
        "counts": {"evaluated": len(cases), "skipped": len(skipped)},
        "skipped": [s.to_dict() for s in skipped],
        "notes": notes,
        "metrics": metrics,
        "paper": paper,
        "tissue_sources": list(REGION_SOURCES),
        "halo_sources": list(HALO_SOURCES),
        "halo": halo,
        "detectability": detect,
        "hallucinations": blobs,
        "lesion_contrast": lesion_contrast_summary(cases),
        "tests": tests,
        "breakdowns": breakdowns,
        "breakdown_tests": breakdown_tests,
    }
    summary["verdict"] = (
        judge(summary, targets).to_dict()
        if cases
        else {"status": "not assessable", "text": "nothing evaluated", "criteria": []}
    )
    return summary


def metrics_csv(cases: Sequence[CaseResult]) -> str:
    """``metrics.csv``: identification columns, then one column per metric (empty: n/a)."""
    names = metric_names(cases)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*ID_COLUMNS, *names])
    for case in cases:
        r = case.record
        ident = [
            r.patient_id,
            r.study_uid,
            r.laterality,
            r.view,
            r.density or "",
            r.bpe_grade or "",
            lesion_status(r),
            "" if r.lesion_enhancing is None else int(r.lesion_enhancing),
            "" if r.halo is None else int(r.halo),
            "" if case.halo_case is None else int(case.halo_case),
            str(case.prediction),
            "; ".join(case.notes),
        ]
        cells = [_cell(case.values.get(name, math.nan)) for name in names]
        writer.writerow([*ident, *cells])
    return buffer.getvalue()


def _cell(value: float) -> str:
    if not math.isfinite(value):
        return "" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{value:.6g}"

"""Reader statistics of the seed paper (Table 3 and its supplement), from two CSV files.

``scores.csv``: ``reader, patient_id, laterality, image_type, bpe, lesion`` (one row per reader,
breast and image type; extra columns allowed, artifact flags ``artifact_halo``,
``artifact_hallucination``, ``artifact_other`` are counted when present).
``truth.csv``: ``patient_id, laterality, bpe, lesion`` (one row per breast).

Methods (all fractions are in 0-1):

* Lesion detection per breast: accuracy, sensitivity, specificity with Wilson score intervals.
* BPE per patient by default: a patient's grade is the highest grade of their breasts (for the
  reader and for the truth alike), and a patient counts only when all their breasts were scored.
  ``accuracy_grouped`` compares minimal-mild (a, b) with moderate-marked (c, d), with a Wilson
  interval. ``kappa_quadratic`` is Cohen's kappa with quadratic weights over a-d against the
  truth; its interval is the percentile interval of a case-level bootstrap (cases = the BPE
  units, resampled with replacement, seeded). Full 4x4 confusion matrices (rows = truth).
* Synthetic vs clinical: two-sided Wilcoxon signed-rank tests (SciPy, default zero handling:
  zero differences dropped) on paired per-case differences, synthetic minus clinical, of
  lesion correctness, grouped-BPE correctness and absolute BPE grade error. ``pooled`` treats
  every reader's assessment as an independent pair (as the paper does); ``per_reader`` repeats
  the test for each reader. Benjamini-Hochberg adjusts the p-values across the endpoints within
  each family (pooled; per reader x endpoint).
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cemsynth.errors import CemsynthError, InputFileError
from cemsynth.io.tables import (
    parse_binary,
    parse_bpe,
    parse_laterality,
    parse_nonempty,
    read_rows,
)
from cemsynth.reader_study.defaults import (
    BOOTSTRAP_SAMPLES,
    BOOTSTRAP_SEED,
    BPE_UNIT,
    CONFIDENCE_LEVEL,
    FDR_ALPHA,
)
from cemsynth.reader_study.tables import IMAGE_TYPES, ImageType, parse_image_type
from cemsynth.vocabulary import BPE_GRADES

SCORE_COLUMNS = ("reader", "patient_id", "laterality", "image_type", "bpe", "lesion")
TRUTH_COLUMNS = ("patient_id", "laterality", "bpe", "lesion")
ARTIFACTS = ("halo", "hallucination", "other")
ARTIFACT_COLUMNS = tuple(f"artifact_{name}" for name in ARTIFACTS)
BPE_UNITS = ("patient", "breast")
ENDPOINTS = ("lesion_correct", "bpe_grouped_correct", "bpe_abs_error")

BreastKey = tuple[str, str]  # (patient_id, laterality)
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Score:
    """One reader's reading of one breast in one image type. ``bpe`` is 0..3 (a..d)."""

    reader: str
    breast: BreastKey
    image_type: ImageType
    bpe: int
    lesion: int
    artifacts: dict[str, int]


@dataclass(frozen=True)
class Truth:
    """Reference of one breast: ``bpe`` 0..3 (a..d), ``lesion`` 0/1."""

    bpe: int
    lesion: int


# --- reading --------------------------------------------------------------------------------


def read_truth(path: Path) -> dict[BreastKey, Truth]:
    """Read ``truth.csv``; a breast listed twice is an error."""
    truth: dict[BreastKey, Truth] = {}
    first: dict[BreastKey, int] = {}
    for row in read_rows(path, TRUTH_COLUMNS):
        key = (parse_nonempty(path, row, "patient_id"), parse_laterality(path, row))
        if key in truth:
            raise InputFileError(
                path, f"line {row.line}: {key[0]} {key[1]} already on line {first[key]}"
            )
        first[key] = row.line
        truth[key] = Truth(
            bpe=BPE_GRADES.index(parse_bpe(path, row, "bpe")),
            lesion=parse_binary(path, row, "lesion"),
        )
    return truth


def read_scores(
    path: Path, truth: dict[BreastKey, Truth], readers: Sequence[str] | None = None
) -> list[Score]:
    """Read ``scores.csv``; duplicates, breasts missing from the truth and (when ``readers``
    is given: the study's reader names) answers of an unknown reader are errors."""
    rows = read_rows(path, SCORE_COLUMNS)
    known = None if readers is None else set(readers)
    present = [c for c in ARTIFACT_COLUMNS if c in rows[0].values]
    scores: list[Score] = []
    first: dict[tuple[str, BreastKey, str], int] = {}
    for row in rows:
        reader = parse_nonempty(path, row, "reader")
        if known is not None and reader not in known:
            raise InputFileError(
                path,
                f"line {row.line}: unknown reader {reader!r} (the study's readers: "
                f"{', '.join(sorted(known))})",
            )
        key = (parse_nonempty(path, row, "patient_id"), parse_laterality(path, row))
        image_type = parse_image_type(path, row)
        ident = (reader, key, image_type)
        if ident in first:
            raise InputFileError(
                path,
                f"line {row.line}: duplicate answer of {reader} for {key[0]} {key[1]} "
                f"{image_type} (first on line {first[ident]})",
            )
        first[ident] = row.line
        if key not in truth:
            raise InputFileError(path, f"line {row.line}: {key[0]} {key[1]} is not in the truth")
        scores.append(
            Score(
                reader=reader,
                breast=key,
                image_type=image_type,
                bpe=BPE_GRADES.index(parse_bpe(path, row, "bpe")),
                lesion=parse_binary(path, row, "lesion"),
                artifacts={
                    c.removeprefix("artifact_"): parse_binary(path, row, c)
                    for c in present
                    if row.get(c)
                },
            )
        )
    return scores


# --- the statistics, each a small pure function ---------------------------------------------


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2.0))


def wilson_interval(successes: int, n: int, level: float = CONFIDENCE_LEVEL) -> tuple[float, float]:
    """Wilson score interval of a binomial fraction ``successes / n`` (NaNs when ``n`` is 0)."""
    if n == 0:
        return (math.nan, math.nan)
    z = _z(level)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def confusion_matrix(truth: IntArray, rated: IntArray, k: int = len(BPE_GRADES)) -> IntArray:
    """``k x k`` counts; rows = truth category, columns = rated category (0-based codes)."""
    return np.bincount(truth * k + rated, minlength=k * k).reshape(k, k).astype(np.int64)


def _kappa_from_counts(counts: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Quadratic-weighted kappa of one or many ``(..., k, k)`` confusion matrices."""
    k = counts.shape[-1]
    i, j = np.indices((k, k))
    weights = (i - j) ** 2 / float((k - 1) ** 2)
    total = counts.sum(axis=(-2, -1), keepdims=True)
    observed = counts / total
    expected = observed.sum(axis=-1, keepdims=True) * observed.sum(axis=-2, keepdims=True)
    disagreement = (weights * observed).sum(axis=(-2, -1))
    chance = (weights * expected).sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(chance > 0, 1.0 - disagreement / chance, np.nan)


def quadratic_kappa(truth: IntArray, rated: IntArray, k: int = len(BPE_GRADES)) -> float:
    """Cohen's kappa with quadratic weights ``(i - j)^2 / (k - 1)^2`` between two ratings
    coded 0..k-1; NaN when it is undefined (no variation in either rating)."""
    counts = confusion_matrix(truth, rated, k).astype(np.float64)
    return float(_kappa_from_counts(counts))


def bootstrap_kappa_interval(
    truth: IntArray,
    rated: IntArray,
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = CONFIDENCE_LEVEL,
    k: int = len(BPE_GRADES),
) -> tuple[float, float, int]:
    """Percentile bootstrap interval of :func:`quadratic_kappa`, resampling cases with
    replacement; returns (low, high, number of resamples where kappa was defined)."""
    n = len(truth)
    if n == 0:
        return (math.nan, math.nan, 0)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(samples, n))
    cells = np.arange(samples)[:, None] * k * k + truth[picks] * k + rated[picks]
    counts = np.bincount(cells.ravel(), minlength=samples * k * k).reshape(samples, k, k)
    kappas = _kappa_from_counts(counts.astype(np.float64))
    valid = kappas[np.isfinite(kappas)]
    if valid.size == 0:
        return (math.nan, math.nan, 0)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(valid, [tail, 1.0 - tail])
    return (float(low), float(high), int(valid.size))


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (step-up, capped at 1), in the input order."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return [float(x) for x in adjusted]


def wilcoxon_paired(differences: Sequence[float]) -> dict[str, Any]:
    """Two-sided Wilcoxon signed-rank test of paired differences (SciPy, zeros dropped).

    With no non-zero difference there is nothing to test: p is 1 and the statistic None.
    ``p_sign_exact`` is the exact two-sided sign test on the non-zero differences (for 0/1
    endpoints the exact McNemar test); SciPy's normal approximation, which it uses beyond 13
    pairs when there are ties or zeros, is optimistic when few pairs differ.
    """
    from scipy.stats import binomtest, wilcoxon

    d = np.asarray(differences, dtype=np.float64)
    nonzero = int(np.count_nonzero(d))
    result: dict[str, Any] = {
        "n_pairs": int(d.size),
        "n_nonzero": nonzero,
        "mean_difference": float(d.mean()) if d.size else None,
    }
    if nonzero == 0:
        return {**result, "statistic": None, "p": 1.0, "p_sign_exact": 1.0}
    result["p_sign_exact"] = float(binomtest(int(np.sum(d > 0)), nonzero, 0.5).pvalue)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # SciPy's note on ties / normal approx.
        test = wilcoxon(d, alternative="two-sided")
    return {**result, "statistic": float(test.statistic), "p": float(test.pvalue)}


# --- putting it together --------------------------------------------------------------------


def _grouped(grade: int) -> int:
    """0 for minimal-mild (a, b), 1 for moderate-marked (c, d)."""
    return int(grade >= 2)


def _bpe_units(
    readings: dict[BreastKey, Score], truth: dict[BreastKey, Truth], unit: str
) -> dict[str, tuple[int, int]]:
    """Unit name -> (truth grade, reader grade) at the BPE unit (see the module docstring)."""
    if unit == "breast":
        return {f"{p} {lat}": (truth[(p, lat)].bpe, s.bpe) for (p, lat), s in readings.items()}
    breasts: dict[str, list[BreastKey]] = defaultdict(list)
    for key in truth:
        breasts[key[0]].append(key)
    units: dict[str, tuple[int, int]] = {}
    for patient, keys in breasts.items():
        if all(key in readings for key in keys):
            units[patient] = (
                max(truth[key].bpe for key in keys),
                max(readings[key].bpe for key in keys),
            )
    return units


def _fraction(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def _lesion_block(
    readings: dict[BreastKey, Score], truth: dict[BreastKey, Truth], level: float
) -> dict[str, Any]:
    tp = sum(1 for k, s in readings.items() if truth[k].lesion and s.lesion)
    fn = sum(1 for k, s in readings.items() if truth[k].lesion and not s.lesion)
    tn = sum(1 for k, s in readings.items() if not truth[k].lesion and not s.lesion)
    fp = sum(1 for k, s in readings.items() if not truth[k].lesion and s.lesion)
    n = tp + fn + tn + fp
    return {
        "n": n,
        "n_positive": tp + fn,
        "n_negative": tn + fp,
        "tp": tp,
        "fn": fn,
        "tn": tn,
        "fp": fp,
        "accuracy": _fraction(tp + tn, n),
        "accuracy_ci": wilson_interval(tp + tn, n, level),
        "sensitivity": _fraction(tp, tp + fn),
        "sensitivity_ci": wilson_interval(tp, tp + fn, level),
        "specificity": _fraction(tn, tn + fp),
        "specificity_ci": wilson_interval(tn, tn + fp, level),
        "n_missing": len(truth) - n,
    }


def analyse(
    scores: Sequence[Score],
    truth: dict[BreastKey, Truth],
    *,
    bpe_unit: str = BPE_UNIT,
    bootstrap_samples: int = BOOTSTRAP_SAMPLES,
    bootstrap_seed: int = BOOTSTRAP_SEED,
    level: float = CONFIDENCE_LEVEL,
    alpha: float = FDR_ALPHA,
) -> dict[str, Any]:
    """All statistics as one JSON-ready dict (see the module docstring for the methods)."""
    if bpe_unit not in BPE_UNITS:
        raise CemsynthError(f"--bpe-unit must be one of {', '.join(BPE_UNITS)}, got {bpe_unit!r}")
    if not 0 < level < 1:
        raise CemsynthError(f"confidence level must be in (0, 1), got {level}")
    if bootstrap_samples < 1:
        raise CemsynthError(f"bootstrap samples must be >= 1, got {bootstrap_samples}")
    by_reader: dict[str, dict[str, dict[BreastKey, Score]]] = defaultdict(
        lambda: {t: {} for t in IMAGE_TYPES}
    )
    for score in scores:
        by_reader[score.reader][score.image_type][score.breast] = score
    readers = sorted(by_reader)
    if not readers:
        raise CemsynthError("scores.csv holds no scores")

    lesion: dict[str, dict[str, Any]] = {}
    bpe: dict[str, dict[str, Any]] = {}
    artifacts: dict[str, dict[str, Any]] = {}
    units: dict[str, dict[str, dict[str, tuple[int, int]]]] = {}
    for reader in readers:
        lesion[reader], bpe[reader], artifacts[reader], units[reader] = {}, {}, {}, {}
        for image_type in IMAGE_TYPES:
            readings = by_reader[reader][image_type]
            lesion[reader][image_type] = _lesion_block(readings, truth, level)
            found = _bpe_units(readings, truth, bpe_unit)
            units[reader][image_type] = found
            t = np.array([g[0] for g in found.values()], dtype=np.int64)
            r = np.array([g[1] for g in found.values()], dtype=np.int64)
            grouped_correct = int(
                sum(_grouped(a) == _grouped(b) for a, b in zip(t, r, strict=True))
            )
            low, high, valid = bootstrap_kappa_interval(
                t, r, samples=bootstrap_samples, seed=bootstrap_seed, level=level
            )
            bpe[reader][image_type] = {
                "unit": bpe_unit,
                "n": len(found),
                "n_grouped_correct": grouped_correct,
                "accuracy_grouped": _fraction(grouped_correct, len(found)),
                "accuracy_grouped_ci": wilson_interval(grouped_correct, len(found), level),
                "accuracy_exact": _fraction(int(np.sum(t == r)), len(found)),
                "kappa_quadratic": quadratic_kappa(t, r) if len(found) else math.nan,
                "kappa_ci": (low, high),
                "kappa_bootstrap_samples": bootstrap_samples,
                "kappa_bootstrap_defined": valid,
                "confusion": {
                    "rows": "truth",
                    "columns": "reader",
                    "labels": list(BPE_GRADES),
                    "matrix": confusion_matrix(t, r).tolist() if len(found) else None,
                },
            }
            flagged = [s.artifacts for s in readings.values() if s.artifacts]
            if flagged:
                artifacts[reader][image_type] = {
                    "n_cases": len(flagged),
                    **{name: sum(a.get(name, 0) for a in flagged) for name in ARTIFACTS},
                }

    summary: dict[str, Any] = {
        "n": {
            "readers": len(readers),
            "breasts": len(truth),
            "patients": len({k[0] for k in truth}),
        },
        "lesion": lesion,
        "bpe": bpe,
        "mean_over_readers": {
            "lesion": {
                t: {
                    m: _mean(lesion[r][t][m] for r in readers)
                    for m in ("accuracy", "sensitivity", "specificity")
                }
                for t in IMAGE_TYPES
            },
            "bpe": {
                t: {
                    m: _mean(bpe[r][t][m] for r in readers)
                    for m in ("accuracy_grouped", "kappa_quadratic")
                }
                for t in IMAGE_TYPES
            },
        },
        "tests": _tests(readers, by_reader, units, truth, alpha),
        "methods": {
            "confidence_level": level,
            "proportion_ci": "Wilson score interval",
            "kappa": "Cohen's kappa, quadratic weights (i-j)^2/(k-1)^2 over BPE a-d",
            "kappa_ci": f"percentile bootstrap, {bootstrap_samples} case-level resamples, "
            f"seed {bootstrap_seed}",
            "bpe_unit": bpe_unit,
            "bpe_patient_grade": "highest grade over the patient's breasts",
            "bpe_grouped": "a-b (minimal-mild) vs c-d (moderate-marked)",
            "paired_test": "two-sided Wilcoxon signed-rank (scipy.stats.wilcoxon, method auto), "
            "synthetic minus clinical, zero differences dropped; exact sign test beside it",
            "multiplicity": f"Benjamini-Hochberg within each family, FDR {alpha}",
        },
    }
    if any(artifacts.values()):
        summary["artifacts"] = artifacts
    return summary


def _mean(values: Any) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _differences(
    reader: str,
    by_reader: dict[str, dict[str, dict[BreastKey, Score]]],
    units: dict[str, dict[str, dict[str, tuple[int, int]]]],
    truth: dict[BreastKey, Truth],
) -> dict[str, list[float]]:
    """Per-case synthetic-minus-clinical differences of each endpoint for one reader."""
    clinical, synthetic = by_reader[reader]["clinical"], by_reader[reader]["synthetic"]
    out: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
    for key in sorted(set(clinical) & set(synthetic)):
        right = truth[key].lesion
        out["lesion_correct"].append(
            float(synthetic[key].lesion == right) - float(clinical[key].lesion == right)
        )
    c_units, s_units = units[reader]["clinical"], units[reader]["synthetic"]
    for name in sorted(set(c_units) & set(s_units)):
        (true_grade, c_grade), (_, s_grade) = c_units[name], s_units[name]
        out["bpe_grouped_correct"].append(
            float(_grouped(s_grade) == _grouped(true_grade))
            - float(_grouped(c_grade) == _grouped(true_grade))
        )
        out["bpe_abs_error"].append(float(abs(s_grade - true_grade) - abs(c_grade - true_grade)))
    return out


def _tests(
    readers: Sequence[str],
    by_reader: dict[str, dict[str, dict[BreastKey, Score]]],
    units: dict[str, dict[str, dict[str, tuple[int, int]]]],
    truth: dict[BreastKey, Truth],
    alpha: float,
) -> dict[str, list[dict[str, Any]]]:
    per_reader_diffs = {r: _differences(r, by_reader, units, truth) for r in readers}
    pooled = [
        {"endpoint": e, **wilcoxon_paired([d for r in readers for d in per_reader_diffs[r][e]])}
        for e in ENDPOINTS
    ]
    per_reader = [
        {"reader": r, "endpoint": e, **wilcoxon_paired(per_reader_diffs[r][e])}
        for r in readers
        for e in ENDPOINTS
    ]
    for family in (pooled, per_reader):
        adjusted = benjamini_hochberg([row["p"] for row in family])
        for row, p_bh in zip(family, adjusted, strict=True):
            row["p_bh"] = p_bh
            row["significant"] = p_bh < alpha
    return {"pooled": pooled, "per_reader": per_reader}

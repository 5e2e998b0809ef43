"""Statistics: mean and SD with patient-level bootstrap intervals, Pearson r with a Fisher-z
interval, and Wilcoxon signed-rank tests with Benjamini-Hochberg correction.

Images of one patient are not independent (two breasts, two views), so bootstrap intervals
resample patients with replacement and keep all their images. Every resampling is seeded.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

Float64Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Summary:
    """``n`` finite values: mean, population SD and the bootstrap interval of the mean."""

    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _resample_indices(groups: Sequence[str], n_boot: int, seed: int) -> list[npt.NDArray[np.int64]]:
    """Index arrays of ``n_boot`` patient-level bootstrap resamples."""
    labels = np.asarray(groups)
    unique = sorted(set(groups))
    members = [np.flatnonzero(labels == group) for group in unique]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_boot):
        chosen = rng.integers(0, len(unique), size=len(unique))
        out.append(np.concatenate([members[i] for i in chosen]))
    return out


def bootstrap_ci(
    statistic: Callable[[npt.NDArray[np.int64]], float],
    groups: Sequence[str],
    n_boot: int,
    seed: int,
    confidence: float,
) -> tuple[float, float]:
    """Percentile interval of ``statistic(indices)`` over patient-level resamples.

    ``statistic`` gets the indices of one resample (into the arrays behind ``groups``);
    resamples where it returns NaN are dropped. NaN bounds when none is finite.
    """
    values = np.array(
        [statistic(indices) for indices in _resample_indices(groups, n_boot, seed)],
        dtype=np.float64,
    )
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def summarise(
    values: Sequence[float], groups: Sequence[str], n_boot: int, seed: int, confidence: float
) -> Summary:
    """Mean, SD and bootstrap CI of the finite ``values`` (one per image, patient in ``groups``)."""
    array = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(array)
    array = array[keep]
    kept_groups = [g for g, k in zip(groups, keep, strict=True) if k]
    if array.size == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    if array.size == 1:
        return Summary(1, float(array[0]), 0.0, math.nan, math.nan)
    low, high = bootstrap_ci(
        lambda idx: float(array[idx].mean()), kept_groups, n_boot, seed, confidence
    )
    return Summary(int(array.size), float(array.mean()), float(array.std()), low, high)


@dataclass(frozen=True)
class Correlation:
    """Pearson r of ``n`` pairs, its Fisher-z interval and two-sided p-value."""

    n: int
    r: float
    ci_low: float
    ci_high: float
    p: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pearson(x: Sequence[float], y: Sequence[float], confidence: float) -> Correlation:
    """Pearson r over the pairs where both values are finite.

    Interval: ``tanh(atanh(r) +- z / sqrt(n - 3))`` (Fisher 1921), NaN for ``n < 4``; r is NaN
    when either variable is constant.
    """
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = int(a.size)
    if n < 3 or float(a.std()) == 0.0 or float(b.std()) == 0.0:
        return Correlation(n, math.nan, math.nan, math.nan, math.nan)
    with warnings.catch_warnings():  # near-constant inputs: r is still what we report
        warnings.simplefilter("ignore")
        result = stats.pearsonr(a, b)
    r = float(result.statistic)
    p = float(result.pvalue)
    if n < 4 or abs(r) >= 1.0:
        return Correlation(n, r, math.nan if n < 4 else r, math.nan if n < 4 else r, p)
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    centre, half = math.atanh(r), z / math.sqrt(n - 3)
    return Correlation(n, r, math.tanh(centre - half), math.tanh(centre + half), p)


@dataclass(frozen=True)
class PairedTest:
    """Wilcoxon signed-rank test of ``first - second`` (two-sided), BH-adjusted within a family.

    ``median_difference`` is the median of the paired differences; ``p`` and ``p_adjusted``
    are NaN when fewer than ``MIN_PAIRS`` pairs or all differences are zero.
    """

    name: str
    first: str
    second: str
    n: int
    median_difference: float
    statistic: float
    p: float
    p_adjusted: float
    significant: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


MIN_PAIRS = 5


def wilcoxon_family(
    comparisons: Sequence[tuple[str, str, str, Sequence[float], Sequence[float]]],
    alpha: float,
) -> list[PairedTest]:
    """Wilcoxon signed-rank tests for ``(name, first label, second label, x, y)`` pairs.

    Pairs with a non-finite value are dropped. The p-values of the tests that could be run
    are corrected together with Benjamini-Hochberg (statsmodels ``fdr_bh``).
    """
    from statsmodels.stats.multitest import multipletests

    raw: list[tuple[str, str, str, int, float, float, float]] = []
    for name, first, second, x, y in comparisons:
        a = np.asarray(x, dtype=np.float64)
        b = np.asarray(y, dtype=np.float64)
        keep = np.isfinite(a) & np.isfinite(b)
        diff = a[keep] - b[keep]
        n = int(diff.size)
        median = float(np.median(diff)) if n else math.nan
        if n < MIN_PAIRS or not np.any(diff != 0):
            raw.append((name, first, second, n, median, math.nan, math.nan))
            continue
        result = stats.wilcoxon(a[keep], b[keep], alternative="two-sided")
        raw.append((name, first, second, n, median, float(result.statistic), float(result.pvalue)))
    testable = [i for i, item in enumerate(raw) if math.isfinite(item[6])]
    adjusted = [math.nan] * len(raw)
    rejected = [False] * len(raw)
    if testable:
        reject, corrected, _, _ = multipletests(
            [raw[i][6] for i in testable], alpha=alpha, method="fdr_bh"
        )
        for position, i in enumerate(testable):
            adjusted[i] = float(corrected[position])
            rejected[i] = bool(reject[position])
    return [
        PairedTest(*item, p_adjusted=adjusted[i], significant=rejected[i])
        for i, item in enumerate(raw)
    ]

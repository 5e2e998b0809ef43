"""The verdict: one set of criteria, so that the report, ``summary.json`` and the demo agree.

:func:`judge` reads the aggregates of an evaluation (the ``summary.json`` mapping that
:func:`cemsynth.evaluation.run.summarise_cases` builds) and checks them against
:class:`Targets`. ``cemsynth evaluate`` judges with :data:`REFERENCE_TARGETS`; the demo and the
golden test pass looser thresholds of their own, to the same function, and the report shows
whichever targets the evaluation was run with. The status is

- ``counts``: every criterion passed;
- ``does not count``: at least one failed;
- ``not assessable``: none failed, but at least one could not be measured (no enhancing
  lesion, no halo image, no tissue masks, ...). A result that cannot be checked does not count.

The criteria (each can be switched off with ``None`` / ``False``):

1. **beats every baseline** (LE in the RC window, flat at the train mean, flat at the image's
   own mean: an oracle) on breast MAE, PSNR and SSIM (means over images) and on CHO d';
2. **lesion detectability**: d' synthetic / d' clinical >= ``dprime_ratio_min``;
3. **lesion contrast**: mean lesion-to-ring CNR over images of enhancing lesions, synthetic /
   clinical >= ``lesion_cnr_ratio_min``;
4. **tissue cancels**: mean FGT-vs-adipose CNR (signed) within ``tissue_cnr_tolerance`` of the
   clinical mean;
5. **no invented lesions**: enhancing blobs in lesion-free breasts, synthetic total <= clinical;
6. **halo removed** in at least ``halo_removed_min`` of the halo images;
7. **no seams** / 8. **no checkerboard**: mean periodic index (see
   :mod:`cemsynth.evaluation.artifacts`) at most ``(1 + tolerance)`` x the clinical image's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from cemsynth.evaluation.config import BASELINES, SOURCE_LABELS, SYNTHETIC

COUNTS = "counts"
DOES_NOT_COUNT = "does not count"
NOT_ASSESSABLE = "not assessable"

#: Pixel metrics a model must win on: (metric suffix, label, True when higher is better).
PIXEL_METRICS = (
    ("mae_breast", "breast MAE", False),
    ("psnr_breast", "breast PSNR", True),
    ("ssim_breast", "breast SSIM", True),
)


@dataclass(frozen=True)
class Targets:
    """Thresholds of the verdict. ``None`` (or ``False``) leaves a criterion out.

    Attributes:
        baselines: sources the synthetic image must beat on :data:`PIXEL_METRICS` and d'.
        dprime_ratio_min: least CHO d' of the synthetic images over the clinical images'.
        lesion_cnr_ratio_min: least mean lesion CNR (enhancing lesions) synthetic / clinical.
        tissue_cnr_tolerance: largest |synthetic - clinical| mean FGT-vs-adipose CNR.
        no_extra_blobs: synthetic enhancing blobs in lesion-free breasts at most clinical's.
        halo_removed_min: least share of halo images whose halo the synthetic image lacks.
        seam_tolerance, checkerboard_tolerance: largest relative excess of the synthetic
            image's mean periodic index over the clinical image's.
    """

    baselines: tuple[str, ...] = BASELINES
    dprime_ratio_min: float | None = 0.5
    lesion_cnr_ratio_min: float | None = 0.5
    tissue_cnr_tolerance: float | None = 0.3
    no_extra_blobs: bool = True
    halo_removed_min: float | None = 0.9
    seam_tolerance: float | None = 0.05
    checkerboard_tolerance: float | None = 0.05

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "baselines": list(self.baselines)}


#: The targets of ``cemsynth evaluate`` (a model result worth reading).
REFERENCE_TARGETS = Targets()


@dataclass(frozen=True)
class Criterion:
    """One criterion: ``value`` against ``threshold``; ``passed`` None when not measurable."""

    name: str
    text: str
    value: float
    threshold: float
    passed: bool | None


@dataclass(frozen=True)
class Verdict:
    """The status, its one-line reason, and every criterion behind it."""

    status: str
    text: str
    criteria: tuple[Criterion, ...]
    targets: Targets = field(default_factory=Targets)

    @property
    def passed(self) -> bool:
        return self.status == COUNTS

    def failed(self) -> list[str]:
        """Names of the criteria that failed or could not be measured."""
        return [c.name for c in self.criteria if c.passed is not True]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "text": self.text,
            "passed": self.passed,
            "criteria": [asdict(c) for c in self.criteria],
            "targets": self.targets.to_dict(),
        }


def _number(value: Any) -> float:
    """A JSON number as float; None (JSON's NaN) or anything else as NaN."""
    return float(value) if isinstance(value, int | float) else math.nan


def _mean(metrics: Mapping[str, Any], name: str) -> float:
    return _number((metrics.get(name) or {}).get("mean"))


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _compare(
    name: str, text: str, value: float, threshold: float, ok: bool, measurable: bool
) -> Criterion:
    passed = bool(ok) if measurable and _finite(value, threshold) else None
    return Criterion(name, text, value, threshold, passed)


def _baseline_criteria(
    metrics: Mapping[str, Any], detect: Mapping[str, Any], baselines: tuple[str, ...]
) -> list[Criterion]:
    out: list[Criterion] = []
    sources = detect.get("sources", {})
    for baseline in baselines:
        label = SOURCE_LABELS.get(baseline, baseline)
        for suffix, words, higher in PIXEL_METRICS:
            model = _mean(metrics, f"{SYNTHETIC}_{suffix}")
            base = _mean(metrics, f"{baseline}_{suffix}")
            ok = model > base if higher else model < base
            sign = ">" if higher else "<"
            out.append(
                _compare(
                    f"{suffix} vs {baseline}",
                    f"{words} {model:.4f} {sign} {base:.4f} ({label})",
                    model,
                    base,
                    ok,
                    True,
                )
            )
        model_d = _number(sources.get(SYNTHETIC, {}).get("dprime"))
        base_d = _number(sources.get(baseline, {}).get("dprime"))
        out.append(
            _compare(
                f"dprime vs {baseline}",
                f"CHO d' {model_d:.2f} > {base_d:.2f} ({label})",
                model_d,
                base_d,
                model_d > base_d,
                True,
            )
        )
    return out


def judge(summary: Mapping[str, Any], targets: Targets = REFERENCE_TARGETS) -> Verdict:
    """Check an evaluation's aggregates against ``targets``; see the module docstring."""
    metrics: Mapping[str, Any] = summary.get("metrics", {})
    detect: Mapping[str, Any] = summary.get("detectability", {})
    criteria = _baseline_criteria(metrics, detect, targets.baselines)

    if targets.dprime_ratio_min is not None:
        value = _number(detect.get("ratio_synthetic_to_clinical", {}).get("value"))
        criteria.append(
            _compare(
                "dprime ratio",
                f"d' synthetic / clinical {value:.3f} >= {targets.dprime_ratio_min}",
                value,
                targets.dprime_ratio_min,
                value >= targets.dprime_ratio_min,
                True,
            )
        )
    if targets.lesion_cnr_ratio_min is not None:
        lesions = summary.get("lesion_contrast", {})
        n = int(lesions.get("n_images", 0) or 0)
        synthetic = _number(lesions.get("synthetic"))
        clinical = _number(lesions.get("clinical"))
        ratio = synthetic / clinical if _finite(synthetic, clinical) and clinical > 0 else math.nan
        criteria.append(
            _compare(
                "lesion CNR ratio",
                f"lesion CNR {synthetic:.3f} synthetic / {clinical:.3f} clinical = {ratio:.3f} "
                f">= {targets.lesion_cnr_ratio_min} ({n} enhancing-lesion images)",
                ratio,
                targets.lesion_cnr_ratio_min,
                ratio >= targets.lesion_cnr_ratio_min,
                n > 0,
            )
        )
    if targets.tissue_cnr_tolerance is not None:
        synthetic = _mean(metrics, f"{SYNTHETIC}_cnr")
        clinical = _mean(metrics, "clinical_cnr")
        gap = abs(synthetic - clinical)
        criteria.append(
            _compare(
                "tissue cancels",
                f"FGT-vs-adipose CNR {synthetic:.3f} synthetic vs {clinical:.3f} clinical: "
                f"|difference| {gap:.3f} <= {targets.tissue_cnr_tolerance}",
                gap,
                targets.tissue_cnr_tolerance,
                gap <= targets.tissue_cnr_tolerance,
                True,
            )
        )
    if targets.no_extra_blobs:
        blobs = summary.get("hallucinations", {})
        n = int(blobs.get("n_lesion_free", 0) or 0)
        synthetic = _number(blobs.get("synthetic_total"))
        clinical = _number(blobs.get("clinical_total"))
        criteria.append(
            _compare(
                "no invented lesions",
                f"enhancing blobs in {n} lesion-free images: {synthetic:.0f} synthetic <= "
                f"{clinical:.0f} clinical",
                synthetic,
                clinical,
                synthetic <= clinical,
                n > 0,
            )
        )
    if targets.halo_removed_min is not None:
        halo = summary.get("halo", {})
        n = int(halo.get("n_halo_cases", 0) or 0)
        share = _number(halo.get("share_removed"))
        criteria.append(
            _compare(
                "halo removed",
                f"halo removed in {share:.0%} of {n} halo images >= {targets.halo_removed_min:.0%}",
                share,
                targets.halo_removed_min,
                share >= targets.halo_removed_min,
                n > 0,
            )
        )
    for name, words, tolerance in (
        ("seam_index", "no window seams", targets.seam_tolerance),
        ("checkerboard_index", "no checkerboard", targets.checkerboard_tolerance),
    ):
        if tolerance is None:
            continue
        synthetic = _mean(metrics, f"{SYNTHETIC}_{name}")
        clinical = _mean(metrics, f"clinical_{name}")
        limit = (1.0 + tolerance) * clinical
        criteria.append(
            _compare(
                words,
                f"{name.replace('_', ' ')} {synthetic:.3f} synthetic <= {limit:.3f} = "
                f"(1 + {tolerance}) x {clinical:.3f} clinical",
                synthetic,
                limit,
                synthetic <= limit,
                True,
            )
        )
    return _verdict(criteria, targets)


def _verdict(criteria: list[Criterion], targets: Targets) -> Verdict:
    failed = [c for c in criteria if c.passed is False]
    unknown = [c for c in criteria if c.passed is None]
    if failed:
        status = DOES_NOT_COUNT
        text = "fails: " + "; ".join(c.text for c in failed)
    elif unknown:
        status = NOT_ASSESSABLE
        text = "could not be measured: " + "; ".join(c.name for c in unknown)
    else:
        status = COUNTS
        text = "every criterion passed"
    return Verdict(status, text, tuple(criteria), targets)

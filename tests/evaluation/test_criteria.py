"""The single verdict: constructed evaluation summaries, each criterion made to fail."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import pytest

from cemsynth.evaluation.config import BASELINES
from cemsynth.evaluation.criteria import (
    COUNTS,
    DOES_NOT_COUNT,
    NOT_ASSESSABLE,
    REFERENCE_TARGETS,
    Targets,
    judge,
)


def _mean(value: float) -> dict[str, float]:
    return {"mean": value}


def passing_summary() -> dict[str, Any]:
    """Aggregates of a model that meets every reference target."""
    metrics: dict[str, Any] = {
        "synthetic_mae_breast": _mean(0.10),
        "synthetic_psnr_breast": _mean(20.0),
        "synthetic_ssim_breast": _mean(0.30),
        "synthetic_cnr": _mean(-0.05),
        "clinical_cnr": _mean(-0.11),
        "synthetic_seam_index": _mean(1.02),
        "clinical_seam_index": _mean(1.01),
        "synthetic_checkerboard_index": _mean(1.00),
        "clinical_checkerboard_index": _mean(1.03),
    }
    dprime: dict[str, Any] = {"synthetic": {"dprime": 20.0}, "clinical": {"dprime": 30.0}}
    for index, baseline in enumerate(BASELINES):
        metrics[f"{baseline}_mae_breast"] = _mean(0.20 + index * 0.01)
        metrics[f"{baseline}_psnr_breast"] = _mean(18.0)
        metrics[f"{baseline}_ssim_breast"] = _mean(0.20)
        dprime[baseline] = {"dprime": 3.0}
    return {
        "metrics": metrics,
        "detectability": {
            "sources": dprime,
            "ratio_synthetic_to_clinical": {"value": 20.0 / 30.0},
        },
        "lesion_contrast": {"n_images": 5, "synthetic": 1.0, "clinical": 1.6},
        "hallucinations": {"n_lesion_free": 6, "synthetic_total": 1.0, "clinical_total": 2.0},
        "halo": {"n_halo_cases": 10, "share_removed": 1.0},
    }


def test_a_model_meeting_every_target_counts() -> None:
    verdict = judge(passing_summary())
    assert verdict.status == COUNTS and verdict.passed and verdict.failed() == []
    # 3 baselines x (3 pixel metrics + d') + 7 quality criteria
    assert len(verdict.criteria) == 3 * 4 + 7
    assert verdict.to_dict()["targets"]["dprime_ratio_min"] == 0.5


def _set(path: str, value: float) -> Callable[[dict[str, Any]], None]:
    def change(summary: dict[str, Any]) -> None:
        node = summary
        *parents, last = path.split("/")
        for key in parents:
            node = node[key]
        node[last] = value

    return change


@pytest.mark.parametrize(
    ("change", "fails"),
    [
        (_set("metrics/synthetic_mae_breast/mean", 0.205), "mae_breast vs baseline_le"),
        (_set("metrics/synthetic_psnr_breast/mean", 17.0), "psnr_breast vs baseline_flat_own"),
        (_set("metrics/synthetic_ssim_breast/mean", 0.2), "ssim_breast vs baseline_flat_train"),
        (_set("detectability/sources/synthetic/dprime", 2.0), "dprime vs baseline_le"),
        (_set("detectability/ratio_synthetic_to_clinical/value", 0.49), "dprime ratio"),
        (_set("lesion_contrast/synthetic", 0.7), "lesion CNR ratio"),
        (_set("metrics/synthetic_cnr/mean", 0.25), "tissue cancels"),
        (_set("metrics/synthetic_cnr/mean", -0.45), "tissue cancels"),
        (_set("hallucinations/synthetic_total", 3.0), "no invented lesions"),
        (_set("halo/share_removed", 0.85), "halo removed"),
        (_set("metrics/synthetic_seam_index/mean", 1.07), "no window seams"),
        (_set("metrics/synthetic_checkerboard_index/mean", 1.09), "no checkerboard"),
    ],
)
def test_each_criterion_can_fail_the_verdict(
    change: Callable[[dict[str, Any]], None], fails: str
) -> None:
    summary = passing_summary()
    change(summary)
    verdict = judge(summary)
    assert verdict.status == DOES_NOT_COUNT and not verdict.passed
    assert fails in verdict.failed()
    failed = next(c for c in verdict.criteria if c.name == fails)
    assert failed.passed is False and failed.text in verdict.text


def test_unmeasurable_criteria_make_it_not_assessable_unless_something_failed() -> None:
    summary = passing_summary()
    summary["lesion_contrast"] = {"n_images": 0, "synthetic": None, "clinical": None}
    summary["halo"] = {"n_halo_cases": 0, "share_removed": None}
    verdict = judge(summary)
    assert verdict.status == NOT_ASSESSABLE
    assert verdict.failed() == ["lesion CNR ratio", "halo removed"]
    summary["metrics"]["synthetic_mae_breast"]["mean"] = 0.5
    assert judge(summary).status == DOES_NOT_COUNT


def test_looser_targets_are_the_same_function() -> None:
    """The demo passes its own thresholds: what they leave out is not checked, what they keep
    is checked exactly as with the reference targets."""
    summary = passing_summary()
    summary["detectability"]["ratio_synthetic_to_clinical"]["value"] = 0.35
    summary["metrics"]["synthetic_mae_breast"]["mean"] = 0.5
    loose = Targets(baselines=(), dprime_ratio_min=0.3, lesion_cnr_ratio_min=None,
                    no_extra_blobs=False, halo_removed_min=None)  # fmt: skip
    verdict = judge(summary, loose)
    assert verdict.status == COUNTS
    assert [c.name for c in verdict.criteria] == [
        "dprime ratio", "tissue cancels", "no window seams", "no checkerboard",
    ]  # fmt: skip
    assert judge(summary, REFERENCE_TARGETS).status == DOES_NOT_COUNT


def test_json_nulls_and_zeros_are_read_as_such() -> None:
    """summary.json stores NaN as null; a d' of exactly 0 is a number, not a missing one."""
    summary = copy.deepcopy(passing_summary())
    summary["detectability"]["sources"]["baseline_le"]["dprime"] = 0.0
    summary["metrics"]["synthetic_psnr_breast"]["mean"] = None
    verdict = judge(summary)
    by_name = {c.name: c for c in verdict.criteria}
    assert by_name["dprime vs baseline_le"].passed is True
    assert by_name["dprime vs baseline_le"].threshold == 0.0
    assert by_name["psnr_breast vs baseline_le"].passed is None
    assert math.isnan(by_name["psnr_breast vs baseline_le"].value)

"""Evaluation: the paper's metrics, direct pixel metrics, CNR, halo, lesion detectability,
baselines, statistics and the HTML report (``cemsynth evaluate``; ``docs/evaluation.md``).

Heavy parts (torch for LPIPS, matplotlib for the report) are imported only when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cemsynth.evaluation.config import (
        EvaluationConfig,
    )
    from cemsynth.evaluation.run import (
        EvaluationResult,
        run_evaluation,
    )

# Each public name and the module that defines it; imported on first use (see above).
_HOMES = {
    "EvaluationConfig": "cemsynth.evaluation.config",
    "EvaluationResult": "cemsynth.evaluation.run",
    "run_evaluation": "cemsynth.evaluation.run",
}

__all__ = [
    "EvaluationConfig",
    "EvaluationResult",
    "run_evaluation",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)

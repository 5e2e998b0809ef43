"""Evaluation: the paper's metrics, direct pixel metrics, CNR, halo, lesion detectability,
baselines, statistics and the HTML report (``cemsynth evaluate``; ``docs/evaluation.md``).

Heavy parts (torch for LPIPS, matplotlib for the report) are imported only when used.
"""

from cemsynth.evaluation.config import EvaluationConfig
from cemsynth.evaluation.run import EvaluationResult, run_evaluation

__all__ = ["EvaluationConfig", "EvaluationResult", "run_evaluation"]

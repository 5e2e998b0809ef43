"""``make fuzz``: the long fuzz campaign (10,000 cases by default) in batches; prints and writes
the counts that docs/data-pipeline.md records (tracebacks and hangs must be 0).

    .venv/bin/python tools/fuzz.py [--cases 10000] [--batch 500] [--out fuzz-output]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from cemsynth.phantom.cohort import write_cohort
from cemsynth.phantom.config import PhantomConfig
from cemsynth.testing.checkpoints import random_checkpoint
from cemsynth.testing.fuzz import run_campaign


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("fuzz-output"))
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per command")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    phantom = out / "phantom"
    write_cohort(phantom, 1, 0, 0.1, "small", PhantomConfig(), workers=1)
    seeds = sorted(phantom.glob("P0001/*_LE.dcm"))
    model = random_checkpoint(out / "model" / "best.pt").parent
    totals: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    peak = 0.0
    start = time.perf_counter()
    for batch, first in enumerate(range(0, args.cases, args.batch)):
        size = min(args.batch, args.cases - first)
        work = out / f"batch{batch:03d}"
        report = run_campaign(work, seeds, seeds[0].with_name("L_CC_RC.dcm"), model, size,
                              seed=batch, timeout_s=args.timeout)  # fmt: skip
        summary = report.to_dict()
        for key in ("cases", "tracebacks", "hangs", "internal_errors", "one_line_errors"):
            totals[key] += summary[key]
        kinds.update(report.kinds)
        peak = max(peak, report.peak_rss_mb)
        print(f"batch {batch}: {json.dumps(summary, default=str)}", flush=True)
        for command in report.commands:
            for line in command.internal_error_lines:  # a bug met on one file: name it
                print(f"  {command.command}: {line}")
        if report.tracebacks or report.hangs or summary["internal_errors"]:
            for command in report.commands:
                print(f"  {command.command} rc {command.returncode}:\n{command.stderr_tail}")
        else:
            shutil.rmtree(work)  # keep only the batches that show a problem
    result = {**totals, "kinds": dict(kinds), "peak_rss_mb": peak,
              "minutes": round((time.perf_counter() - start) / 60, 1)}  # fmt: skip
    (out / "fuzz.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 1 if totals["tracebacks"] or totals["hangs"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""Outputs of ``reader-study stats``: ``summary.json``, CSV tables and a self-contained HTML page.

The page has no external resources: its figures are inline SVG drawn here, its styles inline.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from cemsynth.io.atomic import write_text_atomic
from cemsynth.io.json_files import json_text
from cemsynth.io.tables import csv_text
from cemsynth.reader_study.tables import IMAGE_TYPES
from cemsynth.vocabulary import BPE_GRADES

COLOURS = {"clinical": "#1f77b4", "synthetic": "#d95f02"}
_LESION_METRICS = ("sensitivity", "specificity", "accuracy")


def write_outputs(summary: dict[str, Any], out: Path) -> list[Path]:
    """Write every output into ``out`` (created if missing); returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "summary.json": json_text(summary, indent=2, sort_keys=True),
        "lesion.csv": _lesion_table(summary),
        "bpe.csv": _bpe_table(summary),
        "bpe_confusion.csv": _confusion_table(summary),
        "tests.csv": _tests_table(summary),
        "report.html": render_html(summary),
    }
    written = []
    for name, text in files.items():
        write_text_atomic(out / name, text)
        written.append(out / name)
    return written


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _lesion_table(summary: dict[str, Any]) -> str:
    header = ["reader", "image_type", "n", "tp", "fn", "tn", "fp"]
    for metric in _LESION_METRICS:
        header += [metric, f"{metric}_ci_low", f"{metric}_ci_high"]
    rows = []
    for reader, by_type in summary["lesion"].items():
        for image_type, block in by_type.items():
            row = [reader, image_type] + [block[k] for k in ("n", "tp", "fn", "tn", "fp")]
            for metric in _LESION_METRICS:
                row += [_num(block[metric]), *(_num(v) for v in block[f"{metric}_ci"])]
            rows.append(row)
    return csv_text(header, rows)


def _bpe_table(summary: dict[str, Any]) -> str:
    header = [
        "reader",
        "image_type",
        "unit",
        "n",
        "n_grouped_correct",
        "accuracy_grouped",
        "accuracy_grouped_ci_low",
        "accuracy_grouped_ci_high",
        "accuracy_exact",
        "kappa_quadratic",
        "kappa_ci_low",
        "kappa_ci_high",
    ]
    rows = []
    for reader, by_type in summary["bpe"].items():
        for image_type, b in by_type.items():
            rows.append(
                [reader, image_type, b["unit"], b["n"], b["n_grouped_correct"]]
                + [_num(b["accuracy_grouped"]), *(_num(v) for v in b["accuracy_grouped_ci"])]
                + [_num(b["accuracy_exact"]), _num(b["kappa_quadratic"])]
                + [_num(v) for v in b["kappa_ci"]]
            )
    return csv_text(header, rows)


def _confusion_table(summary: dict[str, Any]) -> str:
    header = ["reader", "image_type", "truth", *(f"reader_{g}" for g in BPE_GRADES)]
    rows = []
    for reader, by_type in summary["bpe"].items():
        for image_type, b in by_type.items():
            matrix = b["confusion"]["matrix"] or [[0] * len(BPE_GRADES)] * len(BPE_GRADES)
            for grade, counts in zip(BPE_GRADES, matrix, strict=True):
                rows.append([reader, image_type, grade, *counts])
    return csv_text(header, rows)


def _tests_table(summary: dict[str, Any]) -> str:
    header = [
        "family",
        "reader",
        "endpoint",
        "n_pairs",
        "n_nonzero",
        "mean_difference",
        "statistic",
        "p",
        "p_bh",
        "significant",
        "p_sign_exact",
    ]
    rows = []
    for family, tests in summary["tests"].items():
        for t in tests:
            rows.append(
                [family, t.get("reader", "all"), t["endpoint"]]
                + [_num(t[k]) for k in ("n_pairs", "n_nonzero", "mean_difference", "statistic")]
                + [_num(t["p"]), _num(t["p_bh"]), int(t["significant"]), _num(t["p_sign_exact"])]
            )
    return csv_text(header, rows)


# --- HTML -----------------------------------------------------------------------------------


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.1f}%"


def _ci(pair: Any, percent: bool = True) -> str:
    low, high = pair
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "–"
    if percent:
        return f"{100 * low:.1f}–{100 * high:.1f}%"
    return f"{low:.3f}–{high:.3f}"


def _forest_svg(
    title: str,
    rows: list[tuple[str, float, float, float, str]],
    low: float,
    high: float,
    step: float,
) -> str:
    """A dot-and-whisker chart: one row per (label, value, ci_low, ci_high, colour); grid
    lines every ``step`` from ``low`` to ``high``."""
    label_w, plot_w, row_h, top = 150, 420, 18, 28
    height = top + row_h * len(rows) + 30
    width = label_w + plot_w + 20

    def x(v: float) -> float:
        return label_w + (min(max(v, low), high) - low) / (high - low) * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(title)}" font-family="sans-serif" font-size="11">',
        f'<text x="{label_w}" y="16" font-weight="bold">{html.escape(title)}</text>',
    ]
    legend_x = label_w + plot_w - 150
    for offset, (name, colour) in enumerate(COLOURS.items()):
        lx = legend_x + 80 * offset
        parts.append(
            f'<circle cx="{lx}" cy="12" r="4" fill="{colour}"/>'
            f'<text x="{lx + 8}" y="16">{name}</text>'
        )
    for tick in range(round((high - low) / step) + 1):
        v = low + step * tick
        tx = x(v)
        parts.append(
            f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{height - 24}" stroke="#ddd"/>'
            f'<text x="{tx:.1f}" y="{height - 10}" text-anchor="middle">{v:g}</text>'
        )
    for i, (label, value, ci_low, ci_high, colour) in enumerate(rows):
        y = top + row_h * i + row_h / 2
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 4:.1f}" text-anchor="end">{html.escape(label)}</text>'
        )
        if not any(math.isnan(v) for v in (ci_low, ci_high)):
            parts.append(
                f'<line x1="{x(ci_low):.1f}" y1="{y:.1f}" x2="{x(ci_high):.1f}" y2="{y:.1f}" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
        if not math.isnan(value):
            parts.append(f'<circle cx="{x(value):.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def _heatmap(matrix: list[list[int]] | None) -> str:
    if matrix is None:
        return "<p>no cases</p>"
    peak = max(max(row) for row in matrix) or 1
    head = "".join(f"<th>{g}</th>" for g in BPE_GRADES)
    body = []
    for grade, row in zip(BPE_GRADES, matrix, strict=True):
        cells = "".join(
            f'<td style="background:rgba(31,119,180,{0.85 * n / peak:.2f})">{n}</td>' for n in row
        )
        body.append(f"<tr><th>{grade}</th>{cells}</tr>")
    return (
        '<table class="cm"><tr><th>truth \\ reader</th>'
        + head
        + "</tr>"
        + "".join(body)
        + "</table>"
    )


def render_html(summary: dict[str, Any]) -> str:
    """The self-contained report page."""
    esc = html.escape
    lesion, bpe = summary["lesion"], summary["bpe"]
    readers = list(lesion)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>Reader study statistics</title><style>",
        "body{font:14px/1.4 sans-serif;margin:2rem;max-width:72rem;color:#222}",
        "table{border-collapse:collapse;margin:.5rem 0 1.5rem}",
        "th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}",
        "th:first-child,td:first-child{text-align:left}",
        ".cm td{width:2.5rem;text-align:center}.grid{display:flex;flex-wrap:wrap;gap:1.5rem}",
        "</style></head><body>",
        "<h1>Reader study statistics</h1>",
        f"<p>{summary['n']['readers']} readers, {summary['n']['breasts']} breasts, "
        f"{summary['n']['patients']} patients.</p>",
        "<h2>Lesion detection (per breast)</h2><table><tr><th>Reader</th><th>Images</th>"
        "<th>Accuracy</th><th>95% CI</th><th>Sensitivity</th><th>95% CI</th>"
        "<th>Specificity</th><th>95% CI</th></tr>",
    ]
    for reader in readers:
        for image_type in IMAGE_TYPES:
            b = lesion[reader][image_type]
            parts.append(
                f"<tr><td>{esc(reader)}</td><td>{image_type}</td>"
                f"<td>{b['tp'] + b['tn']}/{b['n']} = {_pct(b['accuracy'])}</td>"
                f"<td>{_ci(b['accuracy_ci'])}</td>"
                f"<td>{b['tp']}/{b['n_positive']} = {_pct(b['sensitivity'])}</td>"
                f"<td>{_ci(b['sensitivity_ci'])}</td>"
                f"<td>{b['tn']}/{b['n_negative']} = {_pct(b['specificity'])}</td>"
                f"<td>{_ci(b['specificity_ci'])}</td></tr>"
            )
    parts.append("</table><div class='grid'>")
    for metric in _LESION_METRICS:
        rows = [
            (
                f"{reader} {image_type}",
                _nan(lesion[reader][image_type][metric]),
                _nan(lesion[reader][image_type][f"{metric}_ci"][0]),
                _nan(lesion[reader][image_type][f"{metric}_ci"][1]),
                COLOURS[image_type],
            )
            for reader in readers
            for image_type in IMAGE_TYPES
        ]
        parts.append(_forest_svg(f"Lesion {metric} (Wilson 95% CI)", rows, 0.0, 1.0, 0.2))
    unit = next(iter(next(iter(bpe.values())).values()))["unit"]
    parts.append(
        f"</div><h2>BPE (per {esc(unit)})</h2><table><tr><th>Reader</th><th>Images</th>"
        "<th>Grouped accuracy (a–b vs c–d)</th><th>95% CI</th><th>Exact</th>"
        "<th>Quadratic κ</th><th>Bootstrap 95% CI</th></tr>"
    )
    kappa_rows = []
    for reader in readers:
        for image_type in IMAGE_TYPES:
            b = bpe[reader][image_type]
            kappa = _nan(b["kappa_quadratic"])
            parts.append(
                f"<tr><td>{esc(reader)}</td><td>{image_type}</td>"
                f"<td>{b['n_grouped_correct']}/{b['n']} = {_pct(b['accuracy_grouped'])}</td>"
                f"<td>{_ci(b['accuracy_grouped_ci'])}</td><td>{_pct(b['accuracy_exact'])}</td>"
                f"<td>{'–' if math.isnan(kappa) else f'{kappa:.3f}'}</td>"
                f"<td>{_ci(b['kappa_ci'], percent=False)}</td></tr>"
            )
            kappa_rows.append(
                (
                    f"{reader} {image_type}",
                    kappa,
                    _nan(b["kappa_ci"][0]),
                    _nan(b["kappa_ci"][1]),
                    COLOURS[image_type],
                )
            )
    parts.append("</table>")
    low = math.floor(4 * min([0.0] + [r[2] for r in kappa_rows if not math.isnan(r[2])])) / 4
    parts.append(_forest_svg("Quadratic-weighted κ (bootstrap 95% CI)", kappa_rows, low, 1.0, 0.25))
    parts.append("<h3>BPE confusion matrices (rows: truth, columns: reader)</h3><div class='grid'>")
    for reader in readers:
        for image_type in IMAGE_TYPES:
            parts.append(
                f"<div><strong>{esc(reader)} {image_type}</strong>"
                f"{_heatmap(bpe[reader][image_type]['confusion']['matrix'])}</div>"
            )
    parts.append(
        "</div><h2>Synthetic vs clinical (Wilcoxon signed-rank, Benjamini–Hochberg)</h2>"
        "<table><tr><th>Family</th><th>Reader</th><th>Endpoint</th><th>Pairs</th>"
        "<th>Non-zero</th><th>Mean difference</th><th>p</th><th>p (BH)</th>"
        "<th>Exact sign test p</th></tr>"
    )
    for family, tests in summary["tests"].items():
        for t in tests:
            mean = t["mean_difference"]
            parts.append(
                f"<tr><td>{family}</td><td>{esc(t.get('reader', 'all'))}</td>"
                f"<td>{t['endpoint']}</td><td>{t['n_pairs']}</td><td>{t['n_nonzero']}</td>"
                f"<td>{'–' if mean is None else f'{mean:+.3f}'}</td>"
                f"<td>{t['p']:.4g}</td><td>{t['p_bh']:.4g}"
                f"{' *' if t['significant'] else ''}</td><td>{t['p_sign_exact']:.4g}</td></tr>"
            )
    parts.append("</table>")
    if "artifacts" in summary:
        parts.append(
            "<h2>Artifacts reported</h2><table><tr><th>Reader</th><th>Images</th>"
            "<th>Cases</th><th>Halo</th><th>Hallucination</th><th>Other</th></tr>"
        )
        for reader, by_type in summary["artifacts"].items():
            for image_type, a in by_type.items():
                parts.append(
                    f"<tr><td>{esc(reader)}</td><td>{image_type}</td><td>{a['n_cases']}</td>"
                    f"<td>{a['halo']}</td><td>{a['hallucination']}</td><td>{a['other']}</td></tr>"
                )
        parts.append("</table>")
    parts.append("<h2>Methods</h2><ul>")
    for name, text in summary["methods"].items():
        parts.append(f"<li><strong>{esc(name)}</strong>: {esc(str(text))}</li>")
    parts.append("</ul></body></html>\n")
    return "".join(parts)

"""``report.html``: one self-contained page (inline PNG figures, inline CSS, no scripts).

Figures are drawn with matplotlib's Agg backend and embedded as base64 PNG, so the page opens
offline and can be mailed as one file.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cemsynth.evaluation.config import (
    BASELINES,
    IDEAL,
    IDEAL_METRICS,
    PREDICTION_SOURCES,
    SOURCE_LABELS,
    SYNTHETIC,
)
from cemsynth.io.atomic import write_text_atomic

if TYPE_CHECKING:
    from cemsynth.evaluation.case import CaseResult
    from cemsynth.evaluation.run import EvaluationResult

DIRECT_METRICS = (
    ("mae_breast", "MAE, breast (windowed)"),
    ("psnr_breast", "PSNR dB, breast (windowed, range 2)"),
    ("ssim_breast", "SSIM, breast (windowed)"),
    ("mae_whole", "MAE, whole image (windowed)"),
    ("psnr_whole", "PSNR dB, whole image (windowed)"),
    ("ssim_whole", "SSIM, whole image (windowed)"),
    ("msssim_whole", "MS-SSIM, whole image (windowed)"),
    ("msssim_breastbox", "MS-SSIM, breast bounding box (windowed)"),
    ("mae_8bit", "MAE, whole image (8-bit min-max)"),
    ("psnr_8bit", "PSNR dB, whole image (8-bit min-max)"),
    ("ssim_8bit", "SSIM, whole image (8-bit min-max)"),
    ("lpips", "LPIPS, breast bounding box (windowed)"),
)
TISSUE_METRICS = (
    ("cnr", "CNR signed (mean_f - mean_a) / (sd_a + sd_f)"),
    ("cnr_abs", "CNR |.| (paper formula)"),
    ("mean_adipose", "mean adipose (windowed)"),
    ("mean_fgt", "mean fibroglandular (windowed)"),
    ("lesion_cnr", "lesion-to-ring CNR"),
)
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;max-width:1200px;
color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:0.5em 0;font-size:0.85em}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.verdict{padding:0.8em;border-radius:6px;font-weight:600}
.counts{background:#e3f6e3}.notcount{background:#fbe3e3}.na{background:#fff4d6}
.good{color:#17702a}.bad{color:#a11}.small{font-size:0.8em;color:#555}
img{max-width:100%}figure{margin:0.5em 0}
"""


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.{digits}f}"


def _summary_cell(entry: dict[str, Any] | None) -> str:
    if not entry or not entry.get("n"):
        return "–"
    text = f"{_fmt(entry['mean'])} ± {_fmt(entry['sd'])}"
    if entry.get("ci_low") is not None and math.isfinite(entry.get("ci_low") or math.nan):
        text += f" <span class=small>[{_fmt(entry['ci_low'])}, {_fmt(entry['ci_high'])}]</span>"
    return text


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return _img(buffer.getvalue())


def _img(data: bytes, alt: str = "figure") -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _scatter(cases: Sequence[CaseResult]) -> str:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    markers = {SYNTHETIC: "o", **dict(zip(BASELINES, ("s", "^", "x"), strict=True))}
    for axis, kind, label in ((axes[0], "mae", "MAE"), (axes[1], "ssim", "SSIM")):
        x = [c.values[f"paper_{kind}_le_clinical"] for c in cases]
        for source in PREDICTION_SOURCES:
            y = [c.values[f"paper_{kind}_le_{source}"] for c in cases]
            axis.scatter(x, y, s=18, marker=markers[source], label=SOURCE_LABELS[source], alpha=0.8)
        finite = [v for v in x if math.isfinite(v)]
        if finite:
            low, high = min(finite), max(finite)
            axis.plot([low, high], [low, high], color="gray", lw=0.8, ls="--")
        axis.set_xlabel(f"{label}(LE, clinical RC)")
        axis.set_ylabel(f"{label}(LE, image)")
        axis.set_title(f"Change from LE: {label} (paper Fig. 3)")
    axes[1].legend(fontsize=7)
    return _png(figure)


def _boxplot(cases: Sequence[CaseResult], sources: Sequence[str], metric: str, title: str) -> str:
    import matplotlib.pyplot as plt

    data, labels = [], []
    for source in sources:
        values = [c.values.get(f"{source}_{metric}", math.nan) for c in cases]
        values = [v for v in values if math.isfinite(v)]
        if values:
            data.append(values)
            labels.append(SOURCE_LABELS.get(source, source).replace("baseline: ", "b: "))
    if not data:
        return "<p>No values to plot.</p>"
    figure, axis = plt.subplots(figsize=(7, 3.6))
    axis.boxplot(data)
    axis.set_xticks(range(1, len(labels) + 1), labels, fontsize=8)
    axis.axhline(0.0, color="gray", lw=0.6)
    axis.set_title(title)
    return _png(figure)


def _panel(case: CaseResult) -> str:
    """LE | clinical | synthetic | synthetic - clinical, windowed; difference in +-0.5."""
    from matplotlib import colormaps
    from PIL import Image as PILImage

    thumbs = case.thumbnails

    def gray(array: np.ndarray) -> np.ndarray:
        values = np.clip((array + 1.0) * 127.5, 0, 255).astype(np.uint8)
        return np.stack([values] * 3, axis=-1)

    diff = thumbs[SYNTHETIC] - thumbs["clinical"]
    coloured = colormaps["RdBu_r"](np.clip(diff / 0.5, -1, 1) * 0.5 + 0.5)[..., :3]
    tiles = [
        gray(thumbs["le"]),
        gray(thumbs["clinical"]),
        gray(thumbs[SYNTHETIC]),
        (coloured * 255).astype(np.uint8),
    ]
    gap = np.full((tiles[0].shape[0], 4, 3), 255, dtype=np.uint8)
    row = np.concatenate([x for tile in tiles for x in (tile, gap)][:-1], axis=1)
    buffer = io.BytesIO()
    PILImage.fromarray(row).save(buffer, format="PNG", optimize=True)
    return _img(buffer.getvalue(), alt=case.name)


def write_html_report(result: EvaluationResult, path: Path) -> None:
    """Write ``report.html`` for an evaluation (atomically)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    summary, cases = result.summary, result.cases
    metrics: dict[str, Any] = summary["metrics"]
    parts: list[str] = [
        f"<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>cemsynth evaluation</title><style>{CSS}</style></head><body>"
    ]
    inputs = summary["inputs"]
    parts.append("<h1>cemsynth evaluation</h1>")
    parts.append(
        _table(
            ["input", "value"],
            [
                ["predictions", html.escape(inputs["predictions"])],
                ["manifest", html.escape(inputs["manifest"])],
                ["cases", html.escape(inputs["selection"])],
                ["matching rule", html.escape(inputs["matching_rule"])],
                [
                    "evaluated / skipped",
                    f"{summary['counts']['evaluated']} / {summary['counts']['skipped']}",
                ],
                [
                    "preprocessing",
                    html.escape(
                        f"preset {summary['preprocess']['preset']}, "
                        f"LE window {summary['preprocess']['le_window']}, "
                        f"RC window {summary['preprocess']['rc_window']}"
                    ),
                ],
                ["LPIPS", html.escape(summary["lpips_status"])],
                ["cemsynth", html.escape(summary["cemsynth_version"])],
            ],
        )
    )
    verdict = summary["verdict"]
    css = {"counts": "counts", "does not count": "notcount"}.get(verdict["status"], "na")
    parts.append(
        f"<p class='verdict {css}'>Verdict: {html.escape(verdict['status'])} — "
        f"{html.escape(verdict['text'])}</p>"
    )
    parts.append(
        "<p class=small>A model result counts only where every criterion below passes: it "
        "beats every baseline (the flat image at the breast's own mean is an oracle) on the "
        "pixel metrics inside the breast and on lesion detectability (CHO d'), and the "
        "thresholds on lesion contrast, tissue cancellation, invented lesions, the halo and "
        "periodic artifacts hold. Pixel metrics reward blur: a flat image is a strong "
        "competitor.</p>"
    )
    marks = {
        True: "<span class=good>pass</span>",
        False: "<span class=bad>fail</span>",
        None: "n/a",
    }
    rows = [
        [html.escape(c["name"]), html.escape(c["text"]), marks[c["passed"]]]
        for c in verdict.get("criteria", [])
    ]
    if rows:
        parts.append(_table(["criterion", "measured", "result"], rows))
    baselines = summary["baselines"]
    parts.append(
        f"<p class=small>Flat baseline value: {_fmt(baselines['flat_train_value'], 1)} stored "
        f"units ({html.escape(baselines['flat_train_source'])}).</p>"
    )

    if summary["skipped"] or summary["notes"]:
        parts.append("<h2>Skipped cases and notes</h2>")
        if summary["skipped"]:
            parts.append(
                _table(
                    ["case", "reason"],
                    [
                        [
                            html.escape(f"{s['patient_id']} {s['laterality']} {s['view']}"),
                            html.escape(s["reason"]),
                        ]
                        for s in summary["skipped"]
                    ],
                )
            )
        if summary["notes"]:
            parts.append(
                _table(
                    ["case", "note"],
                    [[html.escape(n["case"]), html.escape(n["note"])] for n in summary["notes"]],
                )
            )

    parts.append("<h2>The paper's metrics: change from LE (Fig. 3)</h2>")
    parts.append(
        "<p class=small>MAE and SSIM between LE and each image, windowed [-1, 1], inside the "
        "breast; Pearson r (Fisher-z 95 % CI) between the clinical and the other set.</p>"
    )
    rows = [
        [
            "clinical RC",
            _summary_cell(metrics.get("paper_mae_le_clinical")),
            "",
            _summary_cell(metrics.get("paper_ssim_le_clinical")),
            "",
        ]
    ]
    for source in PREDICTION_SOURCES:
        cells = [html.escape(SOURCE_LABELS[source])]
        for kind in ("mae", "ssim"):
            corr = summary["paper"][kind][source]
            cells.append(_summary_cell(metrics.get(f"paper_{kind}_le_{source}")))
            cells.append(f"{_fmt(corr['r'])} [{_fmt(corr['ci_low'])}, {_fmt(corr['ci_high'])}]")
        rows.append(cells)
    parts.append(
        _table(["image", "MAE(LE, ·)", "r vs clinical", "SSIM(LE, ·)", "r vs clinical"], rows)
    )
    parts.append(f"<figure>{_scatter(cases)}</figure>")

    parts.append("<h2>Direct metrics against the clinical RC (with baselines)</h2>")
    has_ideal = f"{IDEAL}_mae_breast" in metrics
    direct_sources = [*PREDICTION_SOURCES, *([IDEAL] if has_ideal else [])]
    header = ["metric", *[SOURCE_LABELS[s] for s in direct_sources]]
    rows = [
        [
            html.escape(label),
            *[_summary_cell(metrics.get(f"{s}_{key}")) for s in direct_sources],
        ]
        for key, label in DIRECT_METRICS
    ]
    parts.append(_table(header, rows))
    parts.append("<p class=small>mean ± SD [95 % bootstrap CI over patients].</p>")
    if has_ideal:
        parts.append(
            "<p class=small>The ideal RC column is the ceiling: the simulator's recombined image "
            "without quantum noise and without the halo, scored against the clinical RC. No "
            "prediction from LE can be expected to come closer to the clinical image.</p>"
        )
        parts.append("<h2>Against the ideal RC (phantom truth)</h2>")
        ideal_sources = [*PREDICTION_SOURCES, "clinical"]
        rows = [
            [
                html.escape(label),
                *[_summary_cell(metrics.get(f"{s}_{key}_ideal")) for s in ideal_sources],
            ]
            for key, label in DIRECT_METRICS
            if key in IDEAL_METRICS
        ]
        parts.append(_table(["metric", *[SOURCE_LABELS[s] for s in ideal_sources]], rows))
        parts.append(
            "<p class=small>The same metrics with the ideal RC as the reference: what is left "
            "once quantum noise and the halo are taken out of the comparison. The clinical RC "
            "column shows how far the clinical image itself is from the ideal.</p>"
        )

    parts.append("<h2>Periodic artifacts: window seams and checkerboard</h2>")
    parts.append(
        _table(
            ["index", "clinical RC", "synthetic"],
            [
                [
                    label,
                    _summary_cell(metrics.get(f"clinical_{key}")),
                    _summary_cell(metrics.get(f"{SYNTHETIC}_{key}")),
                ]
                for key, label in (
                    ("seam_index", "window seams (periods 16, 32, 64 px of the model grid)"),
                    ("checkerboard_index", "checkerboard (period 4 px of the model grid)"),
                )
            ],
        )
    )
    parts.append(
        "<p class=small>Spectral power at the harmonics of each period over what the nearby "
        "frequencies predict there, inside the breast: about 1 without the artifact, whatever "
        "the noise; seams of a sliding window and the checkerboard of stride-2 transposed "
        "convolutions raise it (docs/evaluation.md).</p>"
    )

    parts.append("<h2>Tissue contrast (paper Table 2) and lesion contrast</h2>")
    sources = summary["tissue_sources"]
    rows = [
        [html.escape(label), *[_summary_cell(metrics.get(f"{s}_{key}")) for s in sources]]
        for key, label in TISSUE_METRICS
    ]
    parts.append(_table(["metric", *[SOURCE_LABELS.get(s, s) for s in sources]], rows))
    parts.append(f"<figure>{_boxplot(cases, sources, 'cnr', 'Signed tissue CNR')}</figure>")

    halo = summary["halo"]
    parts.append("<h2>Halo</h2>")
    rows = [
        [html.escape(SOURCE_LABELS.get(s, s)), _summary_cell(metrics.get(f"{s}_halo"))]
        for s in summary["halo_sources"]
    ]
    parts.append(_table(["image", "halo index (windowed units)"], rows))
    parts.append(
        f"<p>Halo cases: {halo['n_halo_cases']}; removed in the synthetic image (index < "
        f"{_fmt(halo['threshold'], 2)}): {halo['n_removed']} "
        f"({_fmt(100 * halo['share_removed'] if halo['n_halo_cases'] else math.nan, 0)} %).</p>"
    )

    detect = summary["detectability"]
    parts.append("<h2>Lesion detectability (channelized Hotelling observer)</h2>")
    rows = [
        [
            html.escape(SOURCE_LABELS.get(s, s)),
            _fmt(v["dprime"]),
            f"[{_fmt(v['ci_low'])}, {_fmt(v['ci_high'])}]",
            str(v["n_present"]),
            str(v["n_absent"]),
        ]
        for s, v in detect.get("sources", {}).items()
    ]
    parts.append(_table(["image", "d'", "95 % CI", "lesion ROIs", "lesion-free ROIs"], rows))
    ratio = detect.get("ratio_synthetic_to_clinical", {})
    parts.append(
        f"<p>d'(synthetic) / d'(clinical) = {_fmt(ratio.get('value'))} "
        f"[{_fmt(ratio.get('ci_low'))}, {_fmt(ratio.get('ci_high'))}].</p>"
    )
    blobs = summary["hallucinations"]
    parts.append(
        f"<p>Enhancing blobs in lesion-free breasts ({blobs['n_lesion_free']} images): "
        f"synthetic {_fmt(blobs['synthetic_total'], 0)}, clinical "
        f"{_fmt(blobs['clinical_total'], 0)}; synthetic images with any: "
        f"{blobs['synthetic_images_with_blobs']}.</p>"
    )

    parts.append("<h2>Wilcoxon signed-rank tests (Benjamini-Hochberg)</h2>")
    rows = [
        [
            html.escape(f"{t['name']}: {t['first']} vs {t['second']}"),
            str(t["n"]),
            _fmt(t["median_difference"], 4),
            _fmt(t["p"], 4),
            _fmt(t["p_adjusted"], 4),
            "yes" if t["significant"] else "no",
        ]
        for t in [*summary["tests"], *summary["breakdown_tests"]]
    ]
    parts.append(_table(["comparison", "n", "median diff", "p", "p (BH)", "significant"], rows))

    parts.append("<h2>Breakdowns</h2>")
    for key, table in summary["breakdowns"].items():
        header = [key, "n", *[m.replace("_", " ") for m in _breakdown_metrics(table)]]
        rows = [
            [
                html.escape(label),
                str(entry["n"]),
                *[_summary_cell(entry[m]) for m in _breakdown_metrics(table)],
            ]
            for label, entry in table.items()
        ]
        parts.append(_table(header, rows))

    parts.append("<h2>Cases: LE | clinical RC | synthetic | synthetic − clinical</h2>")
    ranked = sorted(
        cases,
        key=lambda c: (
            -c.values.get(f"{SYNTHETIC}_mae_breast", 0.0)
            if math.isfinite(c.values.get(f"{SYNTHETIC}_mae_breast", math.nan))
            else 0.0
        ),
    )
    shown = ranked[: result.summary["config"]["max_panels"]]
    parts.append(
        f"<p class=small>{len(shown)} of {len(cases)} cases, largest MAE (breast) first; "
        "difference in windowed units, blue -0.5 … red +0.5.</p>"
    )
    for case in shown:
        parts.append(
            f"<figure>{_panel(case)}<figcaption class=small>{html.escape(case.name)} — MAE "
            f"{_fmt(case.values.get('synthetic_mae_breast'))}, SSIM "
            f"{_fmt(case.values.get('synthetic_ssim_breast'))}</figcaption></figure>"
        )
    parts.append("</body></html>")
    write_text_atomic(path, "\n".join(parts))


def _breakdown_metrics(table: dict[str, Any]) -> list[str]:
    first: dict[str, Any] = next(iter(table.values()), {})
    return [key for key in first if key != "n"]

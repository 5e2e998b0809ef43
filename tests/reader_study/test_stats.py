"""Reader statistics against reference implementations and the seed paper's Table 3."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import wilcoxon
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from cemsynth.errors import InputFileError
from cemsynth.reader_study.report import write_outputs
from cemsynth.reader_study.stats import (
    analyse,
    benjamini_hochberg,
    bootstrap_kappa_interval,
    quadratic_kappa,
    read_scores,
    read_truth,
    wilcoxon_paired,
    wilson_interval,
)

# --- each statistic against its reference -----------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (34, 37), (23, 26), (26, 26), (1, 1)])
def test_wilson_matches_statsmodels(k: int, n: int) -> None:
    expected = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert wilson_interval(k, n) == pytest.approx(expected, abs=1e-12)


def test_wilson_by_hand() -> None:
    # 5/10, z = 1.959964: centre 0.5, half-width z*sqrt(0.025 + z^2/400)/(1 + z^2/10)
    z = 1.959963984540054
    half = z * math.sqrt(0.025 + z * z / 400) / (1 + z * z / 10)
    assert wilson_interval(5, 10) == pytest.approx((0.5 - half, 0.5 + half))
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


@pytest.mark.parametrize("seed", range(5))
def test_quadratic_kappa_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, 50)
    rated = np.clip(truth + rng.integers(-1, 2, 50), 0, 3)
    expected = cohen_kappa_score(truth, rated, weights="quadratic", labels=[0, 1, 2, 3])
    assert quadratic_kappa(truth, rated) == pytest.approx(expected, abs=1e-12)


def test_quadratic_kappa_small_cases() -> None:
    same = np.array([0, 1, 2, 3])
    assert quadratic_kappa(same, same) == pytest.approx(1.0)
    assert math.isnan(quadratic_kappa(np.zeros(5, np.int64), np.zeros(5, np.int64)))
    # one category unused by both raters: labels a-d fixed, as in sklearn with labels=
    t, r = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 2, 2])
    assert quadratic_kappa(t, r) == pytest.approx(
        cohen_kappa_score(t, r, weights="quadratic", labels=[0, 1, 2, 3])
    )


def test_bootstrap_matches_a_plain_loop_with_sklearn() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, 40)
    rated = np.clip(truth + rng.integers(-1, 2, 40), 0, 3)
    low, high, defined = bootstrap_kappa_interval(truth, rated, samples=200, seed=11)
    picks = np.random.default_rng(11).integers(0, 40, size=(200, 40))
    kappas = [
        cohen_kappa_score(truth[p], rated[p], weights="quadratic", labels=[0, 1, 2, 3])
        for p in picks
    ]
    assert defined == 200
    assert (low, high) == pytest.approx(tuple(np.quantile(kappas, [0.025, 0.975])), abs=1e-12)
    assert low < quadratic_kappa(truth, rated) < high
    assert bootstrap_kappa_interval(truth, rated, samples=200, seed=11) == (low, high, defined)


@pytest.mark.parametrize("seed", range(4))
def test_benjamini_hochberg_matches_statsmodels(seed: int) -> None:
    p = np.random.default_rng(seed).uniform(0, 0.2, 9)
    p[2] = p[5]  # a tie
    expected = multipletests(p, alpha=0.05, method="fdr_bh")[1]
    np.testing.assert_allclose(benjamini_hochberg(list(p)), expected, rtol=0, atol=1e-15)
    assert benjamini_hochberg([]) == []


@pytest.mark.parametrize(
    "d",
    [
        [1, 1, -1, 0, 1, 1, 0, 1, 2, -2, 1, 1, 1, -1, 1, 1, 0, 1],  # ties and zeros: normal approx.
        [0.5, -1.5, 2.5, 3.5, 4.5, 5.5],  # distinct: exact distribution
    ],
)
def test_wilcoxon_matches_scipy(d: list[float]) -> None:
    result = wilcoxon_paired(d)
    reference = wilcoxon(d, alternative="two-sided")
    assert result["p"] == pytest.approx(reference.pvalue)
    assert result["statistic"] == pytest.approx(reference.statistic)
    assert result["n_pairs"] == len(d) and result["n_nonzero"] == sum(1 for x in d if x)


def test_wilcoxon_by_hand() -> None:
    # six distinct positive differences: W- = 0, exact two-sided p = 2 / 2^6
    assert wilcoxon_paired([1, 2, 3, 4, 5, 6])["p"] == pytest.approx(2 / 64)
    # sign test: 4 of 4 discordant pairs one way, two-sided p = 2 / 2^4
    assert wilcoxon_paired([1, 1, 1, 1, 0, 0])["p_sign_exact"] == pytest.approx(2 / 16)


def test_wilcoxon_without_differences() -> None:
    nothing = wilcoxon_paired([0, 0, 0])
    assert nothing["p"] == 1.0 and nothing["statistic"] is None


# --- the seed paper's Table 3, rebuilt from counts ---------------------------------------------

# Table 3: 40 patients, 63 breasts, 37 with a lesion and 26 without.
# (true positives, true negatives) per reader and image type.
TABLE3 = {
    "R1": {"clinical": (34, 23), "synthetic": (26, 23)},
    "R2": {"clinical": (32, 24), "synthetic": (28, 23)},
    "R3": {"clinical": (31, 25), "synthetic": (26, 24)},
}
# Grouped BPE agreement (a-b vs c-d) of the synthetic images, per patient: R1 36/40, R2 36/40,
# R3 28/40 as printed in the table (whose percentage, 77.5 %, is 31/40; see the report).
BPE_GROUPED_SYNTHETIC = {"R1": 36, "R2": 36, "R3": 28}


def _paper_cohort() -> tuple[list[tuple[str, str, int, str]], list[str]]:
    """63 breasts of 40 patients (23 with both breasts), 37 positive; BPE per patient."""
    breasts: list[tuple[str, str, int, str]] = []
    patients = [f"P{i:02d}" for i in range(40)]
    grades = "abcd"
    for i, patient in enumerate(patients):
        sides = ("L", "R") if i < 23 else ("L",)
        for side in sides:
            lesion = int(len(breasts) < 37)
            breasts.append((patient, side, lesion, grades[i % 4]))
    return breasts, patients


def _write(path: Path, header: list[str], rows: Sequence[Sequence[object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _paper_files(tmp_path: Path) -> tuple[Path, Path]:
    breasts, patients = _paper_cohort()
    truth = _write(
        tmp_path / "truth.csv",
        ["patient_id", "laterality", "bpe", "lesion"],
        [[p, s, g, lesion] for p, s, lesion, g in breasts],
    )
    flip = {"a": "c", "b": "d", "c": "a", "d": "b"}  # changes the a-b / c-d group
    rows: list[list[object]] = []
    for reader, by_type in TABLE3.items():
        for image_type, (tp, tn) in by_type.items():
            positives = [b for b in breasts if b[2] == 1]
            negatives = [b for b in breasts if b[2] == 0]
            wrong_bpe = set(patients[: 40 - BPE_GROUPED_SYNTHETIC[reader]])
            for index, (p, s, lesion, g) in enumerate(positives + negatives):
                # the first tp positives are found; the first tn negatives are called negative
                said = int(index < tp) if lesion else int(index - len(positives) >= tn)
                grade = flip[g] if image_type == "synthetic" and p in wrong_bpe else g
                halo = int(image_type == "clinical" and index % 3 == 0)
                rows.append([reader, p, s, image_type, grade, said, halo, 0, 0])
    scores = _write(
        tmp_path / "scores.csv",
        [
            "reader",
            "patient_id",
            "laterality",
            "image_type",
            "bpe",
            "lesion",
            "artifact_halo",
            "artifact_hallucination",
            "artifact_other",
        ],
        rows,
    )
    return scores, truth


def test_table3_reconstruction(tmp_path: Path) -> None:
    scores_path, truth_path = _paper_files(tmp_path)
    truth = read_truth(truth_path)
    summary = analyse(read_scores(scores_path, truth), truth)
    for reader, by_type in TABLE3.items():
        for image_type, (tp, tn) in by_type.items():
            block = summary["lesion"][reader][image_type]
            assert (block["tp"], block["tn"], block["n"]) == (tp, tn, 63)
            assert block["sensitivity"] == tp / 37
            assert block["specificity"] == tn / 26
            assert block["accuracy"] == (tp + tn) / 63
            assert block["sensitivity_ci"] == pytest.approx(
                proportion_confint(tp, 37, alpha=0.05, method="wilson")
            )
        bpe = summary["bpe"][reader]["synthetic"]
        assert (bpe["n"], bpe["n_grouped_correct"]) == (40, BPE_GROUPED_SYNTHETIC[reader])
        assert summary["bpe"][reader]["clinical"]["kappa_quadratic"] == pytest.approx(1.0)
    # the paper's rounded numbers
    assert round(summary["lesion"]["R1"]["clinical"]["sensitivity"], 3) == 0.919
    assert round(summary["lesion"]["R1"]["synthetic"]["sensitivity"], 3) == 0.703
    mean = summary["mean_over_readers"]["lesion"]
    assert round(100 * mean["clinical"]["accuracy"], 1) == 89.4
    assert round(100 * mean["clinical"]["sensitivity"], 1) == 87.4
    assert round(100 * mean["clinical"]["specificity"], 1) == 92.3
    assert round(100 * mean["synthetic"]["accuracy"], 1) == 79.4
    assert round(100 * mean["synthetic"]["sensitivity"], 1) == 72.1
    # the paper prints 90.0 %; the mean of its own 88.5, 88.5 and 92.3 % is 89.7 %
    assert round(100 * mean["synthetic"]["specificity"], 1) == 89.7
    pooled = {t["endpoint"]: t for t in summary["tests"]["pooled"]}
    assert pooled["lesion_correct"]["n_pairs"] == 3 * 63
    assert summary["artifacts"]["R1"]["clinical"]["halo"] == 21
    assert summary["artifacts"]["R1"]["synthetic"]["halo"] == 0


def test_outputs(tmp_path: Path) -> None:
    scores_path, truth_path = _paper_files(tmp_path)
    truth = read_truth(truth_path)
    summary = analyse(read_scores(scores_path, truth), truth, bootstrap_samples=100)
    out = tmp_path / "out"
    write_outputs(summary, out)
    data = json.loads((out / "summary.json").read_text())
    r1 = data["lesion"]["R1"]["clinical"]
    assert {"accuracy", "sensitivity", "specificity"} <= set(r1)
    assert 0 <= r1["sensitivity"] <= 1
    b = data["bpe"]["R2"]["synthetic"]
    assert {"accuracy_grouped", "kappa_quadratic", "kappa_ci"} <= set(b)
    assert b["kappa_ci"][0] <= b["kappa_quadratic"] <= b["kappa_ci"][1]
    page = (out / "report.html").read_text()
    assert "<svg" in page and "34/37 = 91.9%" in page
    assert "src=" not in page and "<link" not in page and "<script" not in page  # self-contained
    with (out / "bpe_confusion.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 3 * 2 * 4


def test_breast_unit_and_missing_scores(tmp_path: Path) -> None:
    truth_path = _write(
        tmp_path / "t.csv",
        ["patient_id", "laterality", "bpe", "lesion"],
        [["A", "L", "a", 1], ["A", "R", "c", 0], ["B", "L", "b", 0]],
    )
    scores_path = _write(
        tmp_path / "s.csv",
        ["reader", "patient_id", "laterality", "image_type", "bpe", "lesion"],
        [["R", "A", "L", "clinical", "a", 1], ["R", "B", "L", "clinical", "b", 0]],
    )
    truth = read_truth(truth_path)
    scores = read_scores(scores_path, truth)
    by_patient = analyse(scores, truth, bootstrap_samples=10)
    # patient A misses a breast, so only B counts at patient level
    assert by_patient["bpe"]["R"]["clinical"]["n"] == 1
    assert by_patient["lesion"]["R"]["clinical"]["n_missing"] == 1
    assert (
        analyse(scores, truth, bpe_unit="breast", bootstrap_samples=10)["bpe"]["R"]["clinical"]["n"]
        == 2
    )


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (["R1", "P00", "L", "clinical", "e", "1"], "bpe 'e' is outside a-d"),
        (["R1", "P00", "L", "clinical", "a", "2"], "lesion '2' is not 0 or 1"),
        (["R1", "P00", "L", "fake", "a", "1"], "image_type 'fake' is not clinical or synthetic"),
        (["R1", "P99", "L", "clinical", "a", "1"], "P99 L is not in the truth"),
        (["", "P00", "L", "clinical", "a", "1"], "reader is empty"),
    ],
)
def test_bad_scores(tmp_path: Path, row: list[str], message: str) -> None:
    truth = read_truth(
        _write(
            tmp_path / "t.csv",
            ["patient_id", "laterality", "bpe", "lesion"],
            [["P00", "L", "a", 1]],
        )
    )
    header = ["reader", "patient_id", "laterality", "image_type", "bpe", "lesion"]
    with pytest.raises(InputFileError, match=message):
        read_scores(_write(tmp_path / "s.csv", header, [row]), truth)


def test_duplicates_and_malformed_files(tmp_path: Path) -> None:
    header = ["patient_id", "laterality", "bpe", "lesion"]
    with pytest.raises(InputFileError, match="line 3: P L already on line 2"):
        read_truth(_write(tmp_path / "t.csv", header, [["P", "L", "a", 1], ["P", "left", "b", 0]]))
    truth = read_truth(_write(tmp_path / "t.csv", header, [["P", "L", "a", 1]]))
    score_header = ["reader", "patient_id", "laterality", "image_type", "bpe", "lesion"]
    row = ["R1", "P", "L", "clinical", "a", "1"]
    with pytest.raises(InputFileError, match="duplicate answer of R1 for P L clinical"):
        read_scores(_write(tmp_path / "s.csv", score_header, [row, row]), truth)
    (tmp_path / "s.csv").write_text("reader,patient_id\nR1,P\n")
    with pytest.raises(InputFileError, match="missing column"):
        read_scores(tmp_path / "s.csv", truth)
    (tmp_path / "s.csv").write_text(",".join(score_header) + "\nR1,P,L,clinical,a,1,extra\n")
    with pytest.raises(InputFileError, match="more cells than columns"):
        read_scores(tmp_path / "s.csv", truth)
    (tmp_path / "s.csv").write_text(",".join(score_header) + '\nR1,P,L,clinical,"a,1\n')
    with pytest.raises(InputFileError):
        read_scores(tmp_path / "s.csv", truth)
    with pytest.raises(InputFileError, match="file not found"):
        read_scores(tmp_path / "nope.csv", truth)

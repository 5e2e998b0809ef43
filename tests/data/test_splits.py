"""Patient-level splits: disjoint, stratified, deterministic, counts by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from cemsynth.data.splits import (
    SplitConfig,
    SplitItem,
    make_splits,
    patient_strata,
    read_splits,
    write_splits,
)
from cemsynth.errors import ConfigError, InputFileError


def _cohort(n_patients: int, positive_every: int = 3) -> list[SplitItem]:
    """Two breasts x two views per patient; every third patient has a lesion in one breast."""
    items = []
    for p in range(n_patients):
        for laterality in ("L", "R"):
            for view in ("CC", "MLO"):
                lesion = (p % positive_every == 0) and laterality == "L"
                items.append(SplitItem(f"P{p:03d}_{laterality}_{view}", f"P{p:03d}", lesion))
    return items


def test_no_patient_in_two_splits_and_all_images_follow_their_patient() -> None:
    items = _cohort(50)
    splits = make_splits(items, SplitConfig())
    seen: set[str] = set()
    for name in ("train", "val", "test"):
        patients = set(splits.patients[name])
        assert not patients & seen
        seen |= patients
        for key in splits.entries[name]:
            assert key.split("_")[0] in patients
    assert seen == {item.patient_id for item in items}
    assert sum(len(keys) for keys in splits.entries.values()) == len(items)


def test_counts_follow_fractions_by_hand() -> None:
    splits = make_splits(_cohort(10, positive_every=100), SplitConfig())  # one stratum
    assert [len(splits.patients[n]) for n in ("train", "val", "test")] == [7, 1, 2]
    splits = make_splits(_cohort(100), SplitConfig(val_fraction=0.15, test_fraction=0.25))
    assert [len(splits.patients[n]) for n in ("train", "val", "test")] == [60, 15, 25]


def test_stratified_by_lesion_status() -> None:
    items = _cohort(60)  # 20 positive patients, 40 negative
    strata = patient_strata(items)
    assert sum(1 for s in strata.values() if s == "positive") == 20
    splits = make_splits(items, SplitConfig())
    positives = {
        name: sum(strata[p] == "positive" for p in splits.patients[name])
        for name in splits.patients
    }
    # 70/10/20 % of 20 positive patients, to within one patient
    assert abs(positives["train"] - 14) <= 1
    assert abs(positives["val"] - 2) <= 1
    assert abs(positives["test"] - 4) <= 1


def test_patient_positive_if_any_breast_is() -> None:
    items = [
        SplitItem("a", "P1", False),
        SplitItem("b", "P1", True),
        SplitItem("c", "P2", None),
        SplitItem("d", "P2", False),
        SplitItem("e", "P3", None),
    ]
    assert patient_strata(items) == {"P1": "positive", "P2": "negative", "P3": "unknown"}


def test_deterministic_per_seed_and_independent_of_order() -> None:
    items = _cohort(40)
    first = make_splits(items, SplitConfig(seed=7))
    assert make_splits(list(reversed(items)), SplitConfig(seed=7)) == first
    assert make_splits(items, SplitConfig(seed=8)).patients != first.patients


def test_file_round_trip_and_overlap_detected(tmp_path: Path) -> None:
    splits = make_splits(_cohort(20), SplitConfig(seed=3))
    path = tmp_path / "splits.json"
    write_splits(path, splits)
    assert read_splits(path) == splits
    text = path.read_text()
    moved = splits.patients["test"][0]
    data = splits.to_dict()
    data["patients"]["train"].append(moved)
    import json

    path.write_text(json.dumps(data))
    with pytest.raises(InputFileError, match=f"patient '{moved}' is in both train and test"):
        read_splits(path)
    assert text  # the original was written


@pytest.mark.parametrize(("val", "test"), [(0.5, 0.5), (-0.1, 0.2), (0.1, 1.0)])
def test_bad_fractions(val: float, test: float) -> None:
    with pytest.raises(ConfigError):
        SplitConfig(val_fraction=val, test_fraction=test)

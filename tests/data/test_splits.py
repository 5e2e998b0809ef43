"""Patient-level splits: disjoint, stratified, deterministic, counts by hand."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cemsynth.data.splits import (
    SPLITS_NAME,
    SplitConfig,
    SplitItem,
    Splits,
    ensure_default_split,
    make_splits,
    patient_strata,
    read_splits,
    write_splits,
)
from cemsynth.errors import ConfigError, InputFileError

if TYPE_CHECKING:
    from conftest import RunCli  # the run_cli fixture's type


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


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_bad_seed_is_a_config_error(seed: object) -> None:
    with pytest.raises(ConfigError, match="seed must be"):
        SplitConfig(seed=seed)  # type: ignore[arg-type]


def test_splits_file_with_a_bad_seed_names_the_file(tmp_path: Path) -> None:
    import json

    path = tmp_path / "splits.json"
    write_splits(path, make_splits(_cohort(4), SplitConfig()))
    data = json.loads(path.read_text())
    data["seed"] = -3
    path.write_text(json.dumps(data))
    with pytest.raises(InputFileError, match=r"malformed splits file .*seed must be 0 or more"):
        read_splits(path)


@pytest.fixture
def tiny_cache(tmp_path: Path) -> Path:
    import numpy as np
    from PIL import Image as PILImage

    from cemsynth.batch import BatchReport
    from cemsynth.io.manifest import PairRecord
    from cemsynth.preprocess import PreprocessConfig
    from cemsynth.preprocess.cache import build_cache
    from cemsynth.preprocess.synthetic import smooth_breast_pair

    pairs = []
    for i in range(2):
        le, rc, _ = smooth_breast_pair((120, 100), seed=i)
        paths = []
        for name, image in (("le", le), ("rc", rc)):
            paths.append(tmp_path / f"{i}_{name}.png")
            PILImage.fromarray(image.array.astype(np.uint16)).save(paths[-1])
        pairs.append(PairRecord(f"P{i}", "", "L", "CC", le_path=paths[0], rc_path=paths[1]))
    build_cache(pairs, tmp_path / "cache", PreprocessConfig(), BatchReport(), workers=1)
    return tmp_path / "cache"


def test_default_split_is_written_once_then_only_checked(tiny_cache: Path) -> None:
    """What ``cemsynth preprocess`` does after caching, called from the library: no split ->
    the default one; an existing one is kept and checked against the cache's entries."""
    from cemsynth.preprocess.cache import open_cache

    cached = sorted(entry.key for entry in open_cache(tiny_cache).entries)
    first = ensure_default_split(tiny_cache)
    assert (first.path, first.written, first.matches) == (tiny_cache / SPLITS_NAME, True, True)
    assert first.warning() is None
    written = read_splits(first.path)
    assert sorted(key for keys in written.entries.values() for key in keys) == cached
    assert written.config == SplitConfig()
    # an existing split is never overwritten: checked again, it matches
    assert ensure_default_split(tiny_cache) == type(first)(first.path, False, True)
    # a split that misses a cached pair is kept as it is and named in a warning
    entries = {name: list(keys) for name, keys in written.entries.items()}
    shortened = next(name for name, keys in entries.items() if keys)
    entries[shortened] = entries[shortened][1:]
    write_splits(first.path, Splits(written.config, written.patients, entries, written.strata))
    before = first.path.read_bytes()
    stale = ensure_default_split(tiny_cache)
    assert (stale.written, stale.matches) == (False, False)
    assert first.path.read_bytes() == before
    assert stale.warning() == (
        f"warning: {first.path} does not list exactly the cached pairs; "
        f"run: cemsynth split {tiny_cache}"
    )


def test_cli_negative_seed_is_one_line(tiny_cache: Path, run_cli: RunCli) -> None:
    code, _, err = run_cli(["split", str(tiny_cache), "--seed", "-1"])
    assert code == 2
    assert err == "cemsynth: error: seed must be 0 or more, got -1\n"


def test_cli_unwritable_split_out_is_one_line(
    tiny_cache: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    code, _, err = run_cli(["split", str(tiny_cache), "--out", str(blocker / "splits.json")])
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("cemsynth: error: cannot write to folder of the splits file")

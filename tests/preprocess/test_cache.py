"""The preprocessing cache and ``cemsynth preprocess``: round trip, reuse, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from cemsynth.batch import BatchReport
from cemsynth.cli import main
from cemsynth.errors import ConfigError
from cemsynth.io.manifest import PairRecord, write_manifest
from cemsynth.io.reader import read_image
from cemsynth.preprocess import PreprocessConfig, forward, inverse, load_preprocess_config
from cemsynth.preprocess.cache import CONFIG_NAME, INDEX_NAME, build_cache, open_cache
from cemsynth.preprocess.synthetic import smooth_breast_pair

SHAPE = (200, 160)


def _png(path: Path, array: np.ndarray) -> Path:
    PILImage.fromarray(array).save(path)
    return path


def _pair(
    folder: Path, index: int, patient: str, laterality: str, lesion: bool | None
) -> PairRecord:
    le, rc, truth = smooth_breast_pair(SHAPE, noise_std=3.0, seed=index, laterality=laterality)
    return PairRecord(
        patient_id=patient,
        study_uid="1.2.3",
        laterality=laterality,
        view="CC",
        le_path=_png(folder / f"{index}_le.png", le.array.astype(np.uint16)),
        rc_path=_png(folder / f"{index}_rc.png", rc.array.astype(np.uint16)),
        fgt_mask_path=_png(folder / f"{index}_fgt.png", (truth * 255).astype(np.uint8)),
        lesion_mask_path=_png(folder / f"{index}_lesion.png", np.zeros(SHAPE, dtype=np.uint8)),
        lesion_present=lesion,
        bpe_grade="b",
    )


@pytest.fixture
def cohort(tmp_path: Path) -> list[PairRecord]:
    folder = tmp_path / "images"
    folder.mkdir()
    return [
        _pair(folder, 0, "P1", "L", True),
        _pair(folder, 1, "P1", "R", False),
        _pair(folder, 2, "P2", "L", False),
    ]


def _bad_pairs(folder: Path) -> list[PairRecord]:
    """A blank LE image and an RC image of another size."""
    good = _pair(folder, 9, "P9", "L", None)
    blank = _png(folder / "blank.png", np.full(SHAPE, 1000, dtype=np.uint16))
    ramp = np.tile(np.arange(SHAPE[1], dtype=np.uint16), (SHAPE[0] - 10, 1))
    small = _png(folder / "small_rc.png", ramp)
    return [
        PairRecord("PB", "", "L", "CC", le_path=blank, rc_path=good.rc_path),
        PairRecord("PS", "", "L", "CC", le_path=good.le_path, rc_path=small),
    ]


def test_write_then_read_round_trip(cohort: list[PairRecord], tmp_path: Path) -> None:
    config = PreprocessConfig()
    result = build_cache(cohort, tmp_path / "cache", config, BatchReport(), workers=1)
    assert result.report.failures == []
    cache = open_cache(tmp_path / "cache")
    assert cache.config == config
    assert [entry.patient_id for entry in cache.entries] == ["P1", "P1", "P2"]

    first = cohort[0]
    expected = forward(read_image(first.le_path), read_image(first.rc_path), config)
    loaded = cache.load(cache.entries[0].key)
    assert isinstance(loaded.le, np.memmap)
    np.testing.assert_array_equal(loaded.le, expected.le)
    np.testing.assert_array_equal(loaded.rc, expected.rc)
    np.testing.assert_array_equal(loaded.mask, expected.mask.array)
    assert loaded.le.dtype == np.float32 and loaded.mask.dtype == np.bool_
    assert set(loaded.truth) == {"fgt", "lesion"}
    assert loaded.truth["fgt"].shape == loaded.le.shape
    assert not loaded.truth["lesion"].any()  # an all-zero mask is valid

    record = loaded.record()
    assert record.to_dict() == expected.record.to_dict()
    np.testing.assert_array_equal(record.breast_mask_crop, expected.record.breast_mask_crop)
    assert expected.rc is not None
    np.testing.assert_array_equal(
        inverse(expected.rc, record, config).array,
        inverse(expected.rc, expected.record, config).array,
    )
    document = loaded.entry_json()
    assert document["truth"]["lesion_present"] is True
    assert document["truth"]["bpe_grade"] == "b"
    assert document["pair"]["le_path"] == str(first.le_path)
    # the YAML copy of the config reads back as the same config
    assert load_preprocess_config(tmp_path / "cache" / CONFIG_NAME) == config


def test_rerun_reuses_and_other_config_is_refused(cohort: list[PairRecord], tmp_path: Path) -> None:
    root = tmp_path / "cache"
    build_cache(cohort, root, PreprocessConfig(), BatchReport(), workers=1)
    again = build_cache(cohort, root, PreprocessConfig(), BatchReport(), workers=1)
    assert again.n_reused == 3
    with pytest.raises(ConfigError, match="another preprocessing config"):
        build_cache(cohort, root, PreprocessConfig(anti_alias=True), BatchReport(), workers=1)
    cache = open_cache(root)
    with pytest.raises(ConfigError, match="another config"):
        cache.check_config(PreprocessConfig(rc_window=(0.0, 1.0)))
    cache.check_config(PreprocessConfig(preset="phantom"))  # same values, other label


def test_parallel_workers_match_serial(cohort: list[PairRecord], tmp_path: Path) -> None:
    bad = _bad_pairs(tmp_path)
    report = BatchReport()
    build_cache([*cohort, *bad], tmp_path / "a", PreprocessConfig(), report, workers=2)
    build_cache(cohort, tmp_path / "b", PreprocessConfig(), BatchReport(), workers=1)
    assert len(report.failures) == 2
    a, b = open_cache(tmp_path / "a"), open_cache(tmp_path / "b")
    assert [e.key for e in a.entries] == [e.key for e in b.entries]
    for entry in a.entries:
        np.testing.assert_array_equal(a.load(entry.key).rc, b.load(entry.key).rc)


def _write_manifest(tmp_path: Path, pairs: list[PairRecord]) -> Path:
    path = tmp_path / "manifest.csv"
    write_manifest(path, pairs)
    return path


def test_cli_bad_inputs_one_line_each_and_batch_goes_on(
    cohort: list[PairRecord], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _write_manifest(tmp_path, [*_bad_pairs(tmp_path), *cohort])
    out = tmp_path / "cache"
    with pytest.raises(SystemExit) as info:
        main(["preprocess", str(manifest), "--out", str(out), "--workers", "1"])
    assert info.value.code == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    err_lines = [line for line in captured.err.splitlines() if line.startswith(str(tmp_path))]
    assert len(err_lines) == 2
    assert "blank.png: blank image" in err_lines[0]
    assert "small_rc.png: RC image is 190 x 160 pixels" in err_lines[1]
    assert "2 failed" in captured.out
    index = json.loads((out / INDEX_NAME).read_text())
    assert len(index["entries"]) == 3
    assert len(index["failures"]) == 2
    assert (out / "splits.json").is_file()


def test_cli_bad_dicom_inputs_are_one_line_failures(
    cohort: list[PairRecord], tmp_path: Path, capsys: pytest.CaptureFixture[str], make_dicom
) -> None:
    """Corrupt bytes, no PixelData, a CT and a structured report among good pairs: each is
    one line naming its file, the good pairs are cached, the exit is 1."""
    pixels = np.tile(np.arange(64, dtype=np.uint16) * 40, (64, 1))
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(bytes(range(256)) * 4)
    bad = {
        junk: "not a DICOM file",
        make_dicom(tmp_path / "nopix.dcm", pixels, with_pixels=False): "no pixel data",
        make_dicom(tmp_path / "ct.dcm", pixels, modality="CT"): "modality CT",
        make_dicom(
            tmp_path / "sr.dcm",
            pixels,
            modality="SR",
            with_pixels=False,
            sop_class_uid="1.2.840.10008.5.1.4.1.1.88.11",
        ): "modality SR",
    }
    rows = [
        PairRecord(f"PX{i}", "", "L", "CC", le_path=path, rc_path=cohort[0].rc_path)
        for i, path in enumerate(bad)
    ]
    out = tmp_path / "cache"
    with pytest.raises(SystemExit) as info:
        main(
            [
                "preprocess",
                str(_write_manifest(tmp_path, [*rows, *cohort])),
                "--out",
                str(out),
                "--workers",
                "1",
            ]
        )
    assert info.value.code == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    for path, problem in bad.items():
        lines = [line for line in captured.err.splitlines() if line.startswith(f"{path}:")]
        assert len(lines) == 1 and problem in lines[0], (path, captured.err)
    assert "4 failed" in captured.out
    index = json.loads((out / INDEX_NAME).read_text())
    assert len(index["entries"]) == len(cohort) and len(index["failures"]) == len(bad)


def test_cli_debug_shows_the_traceback_of_an_unexpected_error(
    cohort: list[PairRecord],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import cemsynth.preprocess.cache as cache_module

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(cache_module, "process_pair", broken)
    argv = ["preprocess", str(_write_manifest(tmp_path, cohort)), "--workers", "1", "--out"]
    with pytest.raises(SystemExit) as info:
        main([*argv, str(tmp_path / "a")])
    assert info.value.code == 1
    captured = capsys.readouterr()
    assert "internal error (RuntimeError: boom)" in captured.err
    assert "Traceback" not in captured.out + captured.err
    # --debug: the error propagates to the interpreter, which prints its traceback
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", *argv, str(tmp_path / "b")])
    capsys.readouterr()
    # --debug held for that run only: the next run reports the error as one line again
    with pytest.raises(SystemExit) as info:
        main([*argv, str(tmp_path / "c")])
    assert info.value.code == 1
    assert "internal error (RuntimeError: boom)" in capsys.readouterr().err


def test_cli_strict_stops_with_one_line(
    cohort: list[PairRecord], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _write_manifest(tmp_path, [*_bad_pairs(tmp_path), *cohort])
    with pytest.raises(SystemExit) as info:
        main(
            [
                "preprocess",
                str(manifest),
                "--out",
                str(tmp_path / "c"),
                "--strict",
                "--workers",
                "1",
            ]
        )
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "cemsynth: error: " in err and "blank image" in err
    assert "Traceback" not in err
    assert not (tmp_path / "c" / INDEX_NAME).exists()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "not found"),
        ("patient_id,le_path\nP1,a.png\n", "missing required column"),
        (b"\xff\xfe\x00garbage", "not a UTF-8"),
    ],
)
def test_cli_unreadable_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes | None, fragment: str
) -> None:
    manifest = tmp_path / "manifest.csv"
    if isinstance(content, str):
        manifest.write_text(content)
    elif isinstance(content, bytes):
        manifest.write_bytes(content)
    with pytest.raises(SystemExit) as info:
        main(["preprocess", str(manifest), "--out", str(tmp_path / "c")])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("cemsynth: error: ") and fragment in err[0]


def test_cli_unknown_preset_and_config_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _write_manifest(tmp_path, [])
    with pytest.raises(SystemExit):
        main(["preprocess", str(manifest), "--out", str(tmp_path / "c"), "--preset", "nope"])
    assert "valid presets: 8bit, paper, phantom" in capsys.readouterr().err
    config = tmp_path / "p.yaml"
    config.write_text("windw: 1\n")
    with pytest.raises(SystemExit):
        main(["preprocess", str(manifest), "--out", str(tmp_path / "c"), "--config", str(config)])
    assert "unknown preprocessing config key 'windw'" in capsys.readouterr().err


def test_open_cache_errors(tmp_path: Path) -> None:
    from cemsynth.errors import InputFileError

    with pytest.raises(InputFileError, match="cache index not found"):
        open_cache(tmp_path)
    (tmp_path / INDEX_NAME).write_text('{"format": "other"}')
    with pytest.raises(InputFileError, match="not a cemsynth cache"):
        open_cache(tmp_path)


def test_cli_split_rewrites_splits(
    cohort: list[PairRecord], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cemsynth.data.splits import read_splits

    out = tmp_path / "cache"
    manifest = _write_manifest(tmp_path, cohort)
    main(["preprocess", str(manifest), "--out", str(out), "--workers", "1"])  # exit code 0
    assert read_splits(out / "splits.json").config.seed == 0
    main(["split", str(out), "--seed", "5", "--val", "0", "--test", "0.5"])
    splits = read_splits(out / "splits.json")
    assert splits.config.seed == 5
    assert splits.config.val_fraction == 0.0
    assert len(splits.patients["train"]) == len(splits.patients["test"]) == 1  # P1, P2
    assert "train 1 patients" in capsys.readouterr().out


def test_unexpected_error_is_one_failure_unless_debug(
    cohort: list[PairRecord], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cemsynth.preprocess.cache as cache_module

    real = cache_module.process_pair

    def flaky(pair: PairRecord, *args: object, **kwargs: object) -> object:
        if pair.patient_id == "P2":
            raise RuntimeError("boom")
        return real(pair, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cache_module, "process_pair", flaky)
    report = BatchReport()
    result = build_cache(cohort, tmp_path / "c", PreprocessConfig(), report, workers=1)
    assert len(result.entries) == 2
    assert len(report.failures) == 1
    assert "internal error (RuntimeError: boom)" in report.failures[0].problem
    with pytest.raises(RuntimeError, match="boom"):
        build_cache(
            cohort, tmp_path / "d", PreprocessConfig(), BatchReport(), raise_unexpected=True
        )


# --- reuse only what is really unchanged ------------------------------------------------------


def _entry_json(root: Path, key: str) -> dict:
    return json.loads((root / "entries" / key / "record.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "change",
    [
        {"lesion_present": False},
        {"bpe_grade": "d"},
        {"halo": True},
        {"density": "c"},
        {"pixel_spacing_mm": (0.05, 0.05)},
        {"extra": {"site": "north"}},
        {"adipose_mask_path": "fgt"},  # a truth mask added to the row
    ],
    ids=lambda change: next(iter(change)),
)
def test_a_changed_manifest_row_rebuilds_its_entry(
    cohort: list[PairRecord], tmp_path: Path, change: dict
) -> None:
    from dataclasses import replace

    root = tmp_path / "cache"
    build_cache(cohort, root, PreprocessConfig(), BatchReport(), workers=1)
    if change.get("adipose_mask_path") == "fgt":
        change = {"adipose_mask_path": cohort[0].fgt_mask_path}
    changed = [replace(cohort[0], **change), *cohort[1:]]
    again = build_cache(changed, root, PreprocessConfig(), BatchReport(), workers=1)
    assert again.n_reused == 2  # only the changed row was made again
    document = _entry_json(root, again.entries[0].key)
    name = next(iter(change))
    if name in document["truth"]:
        assert document["truth"][name] == change[name]
    if name == "lesion_present":
        assert again.entries[0].lesion_present is False
        assert open_cache(root).entries[0].lesion_present is False  # index.json too
    if name == "pixel_spacing_mm":  # PNGs carry no spacing: the row's value is used
        assert document["preprocess"]["pixel_spacing_mm"] == [0.05, 0.05]
    if name == "adipose_mask_path":
        assert "adipose" in again.entries[0].truth_masks
    third = build_cache(changed, root, PreprocessConfig(), BatchReport(), workers=1)
    assert third.n_reused == 3


def test_a_changed_truth_mask_file_rebuilds_its_entry(
    cohort: list[PairRecord], tmp_path: Path
) -> None:
    import os
    from dataclasses import replace

    root = tmp_path / "cache"
    first = build_cache(cohort, root, PreprocessConfig(), BatchReport(), workers=1)
    key = first.entries[0].key
    assert not open_cache(root).load(key).truth["lesion"].any()
    lesion = cohort[0].lesion_mask_path
    assert lesion is not None
    spot = np.zeros(SHAPE, dtype=np.uint8)
    spot[90:110, 20:40] = 255
    _png(lesion, spot)
    stat = os.stat(lesion)
    os.utime(lesion, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # coarse clocks
    again = build_cache(cohort, root, PreprocessConfig(), BatchReport(), workers=1)
    assert again.n_reused == 2
    assert open_cache(root).load(key).truth["lesion"].any()

    # a mask dropped from the row: rebuilt, and its old array does not linger
    without = [replace(cohort[0], lesion_mask_path=None), *cohort[1:]]
    third = build_cache(without, root, PreprocessConfig(), BatchReport(), workers=1)
    assert third.n_reused == 2
    assert third.entries[0].truth_masks == ("fgt",)
    assert not (root / "entries" / key / "truth_lesion.npy").exists()


def test_an_interrupted_rebuild_leaves_no_old_record(
    cohort: list[PairRecord], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    import cemsynth.preprocess.cache as cache_module

    root = tmp_path / "cache"
    first = build_cache(cohort, root, PreprocessConfig(), BatchReport(), workers=1)
    record = root / "entries" / first.entries[0].key / "record.json"
    assert record.is_file()
    real = cache_module._save_npy
    calls = {"n": 0}

    def dies_after_one_array(path: Path, array: np.ndarray) -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt
        real(path, array)

    monkeypatch.setattr(cache_module, "_save_npy", dies_after_one_array)
    changed = replace(cohort[0], lesion_present=False)
    with pytest.raises(KeyboardInterrupt):
        cache_module.process_pair(changed, root, PreprocessConfig())
    assert not record.exists()  # a new le.npy never sits beside the old record
    monkeypatch.undo()
    again = build_cache([changed, *cohort[1:]], root, PreprocessConfig(), BatchReport(), workers=1)
    assert again.n_reused == 2 and again.entries[0].lesion_present is False


# --- truth masks go through the image reader --------------------------------------------------


def test_truth_masks_use_the_readers_checks(tmp_path: Path) -> None:
    from cemsynth.errors import InputFileError
    from cemsynth.preprocess.cache import read_truth_mask

    blank = _png(tmp_path / "blank.png", np.zeros((4, 5), dtype=np.uint8))
    assert not read_truth_mask(blank, (4, 5)).any()
    colour = np.zeros((4, 5, 3), dtype=np.uint8)
    colour[1, 1] = (255, 0, 0)
    with pytest.raises(InputFileError, match="true colour image"):
        read_truth_mask(_png(tmp_path / "red.png", colour), (4, 5))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(InputFileError, match="corrupt or unreadable image"):
        read_truth_mask(broken, (4, 5))
    with pytest.raises(InputFileError, match="mask is 4 x 5 pixels, its LE image 5 x 4"):
        read_truth_mask(blank, (5, 4))


# --- failures file, output checks, warnings, workers ------------------------------------------


def test_every_failure_is_written_to_failures_csv(cohort: list[PairRecord], tmp_path: Path) -> None:
    import csv

    from cemsynth.batch import FAILURES_NAME

    root = tmp_path / "cache"
    report = BatchReport()
    build_cache([*_bad_pairs(tmp_path), *cohort], root, PreprocessConfig(), report, workers=1)
    with open(root / FAILURES_NAME, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(Path(r["path"]).name, r["problem"][:11]) for r in rows] == [
        ("blank.png", "blank image"),
        ("small_rc.png", "RC image is"),
    ]
    assert report.failures_path == root / FAILURES_NAME
    # a clean re-run leaves no stale list
    build_cache(cohort, root, PreprocessConfig(), BatchReport(), workers=1)
    assert (root / FAILURES_NAME).read_text(encoding="utf-8") == "path,problem\n"


def test_cli_names_the_failures_file(
    cohort: list[PairRecord], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _write_manifest(tmp_path, [*_bad_pairs(tmp_path), *cohort])
    out = tmp_path / "cache"
    with pytest.raises(SystemExit):
        main(["preprocess", str(manifest), "--out", str(out), "--workers", "1"])
    assert f"all 2 failures are listed in {out / 'failures.csv'}" in capsys.readouterr().out


@pytest.mark.parametrize("where", ["file", "below-a-file"])
def test_cli_unwritable_out_is_one_line_before_any_work(
    cohort: list[PairRecord],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    import cemsynth.preprocess.cache as cache_module

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("preprocessing started before the output was checked")

    monkeypatch.setattr(cache_module, "process_pair", must_not_run)
    manifest = _write_manifest(tmp_path, cohort)
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    out = blocker if where == "file" else blocker / "cache"
    with pytest.raises(SystemExit) as info:
        main(["preprocess", str(manifest), "--out", str(out), "--workers", "1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"cemsynth: error: cannot write to cache folder {out}: ")


def test_one_warning_when_cached_images_are_smaller_than_a_patch(
    cohort: list[PairRecord], tmp_path: Path
) -> None:
    from cemsynth.batch import BatchReport as Report
    from cemsynth.preprocess.cache import CacheEntry, _warn_small_entries

    report = BatchReport()
    result = build_cache(cohort, tmp_path / "cache", PreprocessConfig(), report, workers=1)
    assert all(max(entry.shape) < 128 for entry in result.entries)  # 200 x 160 / 4
    (warning,) = report.warnings
    assert warning.startswith("3 of 3 cached images are smaller than a 128 x 128 training patch")
    assert "downsample_factor" in warning

    big = CacheEntry("k", "P", "", "L", "CC", shape=(128, 300), breast_pixels=1)
    quiet = Report()
    _warn_small_entries([big], tmp_path, quiet)
    assert quiet.warnings == []


def test_workers_zero_means_the_cpus_this_process_may_use(
    cohort: list[PairRecord], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cemsynth.preprocess.cache as cache_module

    def no_pool(*args: object, **kwargs: object) -> None:
        raise AssertionError("a process pool was started for one allowed CPU")

    monkeypatch.setattr(cache_module, "available_cpus", lambda: 1)
    monkeypatch.setattr(cache_module, "ProcessPoolExecutor", no_pool)
    result = build_cache(cohort, tmp_path / "c", PreprocessConfig(), BatchReport(), workers=0)
    assert len(result.entries) == 3


def test_a_pair_listed_twice_fails_both_rows(cohort: list[PairRecord], tmp_path: Path) -> None:
    report = BatchReport()
    result = build_cache(
        [cohort[0], *cohort, cohort[0]], tmp_path / "c", PreprocessConfig(), report, workers=1
    )
    assert len(result.entries) == 2
    assert [f.problem for f in report.failures] == ["listed twice in the manifest"] * 3


def test_a_full_disk_stops_the_run_in_one_line_not_one_per_pair(
    cohort: list[PairRecord], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk once printed an 'internal error ... please report it' line per pair."""
    import errno

    import cemsynth.preprocess.cache as cache_module
    from cemsynth.errors import CemsynthError

    written: list[str] = []
    real = cache_module.process_pair

    def fills_up(pair: PairRecord, root: Path, config: PreprocessConfig):  # type: ignore[no-untyped-def]
        if written:
            raise OSError(errno.ENOSPC, "No space left on device", str(root / "x.npy"))
        written.append(pair.patient_id)
        return real(pair, root, config)

    monkeypatch.setattr(cache_module, "process_pair", fills_up)
    report = BatchReport()
    with pytest.raises(CemsynthError) as caught:
        build_cache(cohort, tmp_path / "cache", PreprocessConfig(), report, workers=1)
    message = str(caught.value)
    assert message.count("\n") == 0 and "No space left on device" in message
    assert "internal error" not in message and "rerun cemsynth preprocess" in message
    assert report.failures == []

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
from cemsynth.io.cache import CONFIG_NAME, INDEX_NAME, build_cache, open_cache
from cemsynth.io.manifest import PairRecord, write_manifest
from cemsynth.io.reader import read_image
from cemsynth.preprocess import PreprocessConfig, forward, inverse, load_preprocess_config
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
    assert "unknown key 'windw'" in capsys.readouterr().err


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
    import cemsynth.io.cache as cache_module

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

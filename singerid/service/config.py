"""What the web service accepts: upload size, song length, concurrency, option caps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from singerid.errors import ParameterError

MiB = 1024**2
FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries, headers and option fields on top of the audio


@dataclass(frozen=True, slots=True)
class ServiceLimits:
    """Limits of ``singerid serve`` (``create_app(..., limits=...)``); every default is ours."""

    max_upload_bytes: int = 50 * MiB  # one request's audio, all its files together (a 4-min WAV is ~40 MiB)
    max_seconds: float = 900.0  # longest song accepted (15 min), read from the file header before decoding
    max_files: int = 20  # songs in one enrol request
    max_concurrent: int = 4  # identify/enrol calls running at once on the thread pool; the rest wait their turn
    max_k: int = 1000  # largest k a client may ask for (k neighbours per block)
    max_list: int = 100  # largest top / evidence / similar a client may ask for
    upload_dir: Path | None = None  # where enrolled uploads are kept (default: HOME/uploads)

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_files", "max_concurrent", "max_k", "max_list"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ParameterError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.max_seconds > 0:
            raise ParameterError(f"max_seconds must be > 0, got {self.max_seconds!r}")

    @property
    def max_body_bytes(self) -> int:
        """The largest request body let through: the audio limit plus the form's own overhead."""
        return self.max_upload_bytes + FORM_OVERHEAD_BYTES

    def describe_upload_limit(self) -> str:
        return f"{self.max_upload_bytes / MiB:g} MiB"

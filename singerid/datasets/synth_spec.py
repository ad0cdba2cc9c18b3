"""What a synthetic corpus should hold: ``CorpusSpec``, validated on construction.

Kept apart from the generator (no numpy here) so that the CLI can take its option defaults
from the dataclass without slowing down ``singerid --help``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from singerid import constants as C
from singerid.errors import ParameterError

MP3_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)  # MPEG-1/2 rates


@dataclass(frozen=True, slots=True)
class CorpusSpec:
    """What to generate. The defaults are those of the demo (4 h of audio)."""

    singers: int = 20  # as artist20
    albums: int = 6  # per singer, as artist20; split 4/1/1 (paper §3.1)
    songs_per_album: int = 4  # ours: 480 songs in all
    seconds: float = 30.0  # length of each song; ours
    seed: int = 0  # one seed for voices, albums, songs and the album split
    audio_format: str = "mp3"  # "mp3" (32 kbit/s CBR like artist20) or "flac" (16-bit)
    sample_rate: int = C.SAMPLE_RATE_HZ  # Hz; artist20 is 16 kHz mono
    voice_ratio_db: tuple[float, float] = (-2.0, 7.0)  # per-song voice/accompaniment dB while singing; calibrated
    stems: bool = False  # also write each song's vocals and accompaniment as FLAC under stems/; ours

    def __post_init__(self) -> None:
        _check_int("singers", self.singers, 2, 999, "one singer cannot be identified")
        _check_int("albums", self.albums, 3, 99, "the album split needs train, val and test albums")
        _check_int("songs_per_album", self.songs_per_album, 1, 99, "track numbers have two digits")
        _check_int("seed", self.seed, 0, 2**63 - 1, "seeds are non-negative integers")
        if not isinstance(self.seconds, (int, float)) or not 2.0 <= self.seconds <= 900.0:
            raise ParameterError(f"seconds must be between 2 and 900, got {self.seconds!r}")
        if self.audio_format not in ("mp3", "flac"):
            raise ParameterError(f"audio_format must be 'mp3' or 'flac', got {self.audio_format!r}")
        rates = MP3_SAMPLE_RATES if self.audio_format == "mp3" else range(8000, 96001)
        if self.sample_rate not in rates:
            allowed = ", ".join(map(str, MP3_SAMPLE_RATES)) if self.audio_format == "mp3" else "8000..96000"
            raise ParameterError(f"sample_rate {self.sample_rate!r} is not usable for "
                                 f"{self.audio_format}; use one of {allowed}")
        ratio = self.voice_ratio_db
        if not (isinstance(ratio, tuple) and len(ratio) == 2 and all(isinstance(v, (int, float)) for v in ratio)
                and -30.0 <= ratio[0] <= ratio[1] <= 30.0):
            raise ParameterError(f"voice_ratio_db must be (low, high) with -30 <= low <= high <= 30, "
                                 f"got {self.voice_ratio_db!r}")
        if not isinstance(self.stems, bool):
            raise ParameterError(f"stems must be True or False, got {self.stems!r}")

    @property
    def n_songs(self) -> int:
        return self.singers * self.albums * self.songs_per_album

    def to_dict(self) -> dict[str, Any]:
        return plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CorpusSpec:
        """The spec recorded in ``corpus.json`` (``to_dict``'s form). Fields it lacks take their
        defaults, so a manifest written before a field existed still reads (e.g. ``stems``).

        Raises ParameterError for a bad value and TypeError for an unknown field, as the
        constructor does.
        """
        fields = dict(data)
        if "voice_ratio_db" in fields and isinstance(fields["voice_ratio_db"], list):
            fields["voice_ratio_db"] = tuple(fields["voice_ratio_db"])
        return cls(**fields)


def plain(value: Any) -> Any:
    """Tuples to lists, recursively (the JSON form of a dataclass dict)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    return value


def _check_int(name: str, value: Any, low: int, high: int, why: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ParameterError(f"{name} must be an integer from {low} to {high}, got {value!r} ({why})")

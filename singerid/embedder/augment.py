"""Training-time augmentation against the album confound: shuffle-and-remix, gain and spectral tilt.

Shuffle-and-remix: Hsieh, Cheng, Fan, Yang, Yang, "Addressing the confounds of accompaniments
in singer identification", ICASSP 2020. Vocals and accompaniment are separated, then each
vocal is mixed with the accompaniment of a block from another song, "to artificially make the
singers sing in different contexts". We remix log-mel blocks rather than audio: mel power is
linear in STFT power, and separated stems are close to uncorrelated, so the power of their sum
is close to the sum of their powers (the cross term averages out over a mel band). We choose
the partner from another album *and* another singer, so that neither the album's sound nor a
colleague's voice can stand in for the singer's.

Gain and tilt stand in for mastering: a whole-block level offset, and an EQ slope in dB per
octave around 1 kHz. Both are ours.

All blocks are float32 torch tensors (batch, n_mels, frames) of log-mel dB (10 log10 of mel
power, floored at -100 dB as in ``singerid.audio.features``). Random draws come from numpy
generators seeded by the caller, never from torch's global generator, so the training loop's
dropout stream is untouched and a resumed run sees the same augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from singerid import constants as C
from singerid.config import FeatureConfig, _Serialisable
from singerid.errors import ParameterError

FLOOR_DB = 10.0 * float(np.log10(C.AMIN_POWER))  # -100 dB: the feature floor (librosa's amin)
TILT_PIVOT_HZ = 1000.0  # ours: tilt leaves 1 kHz unchanged


@dataclass(frozen=True, slots=True)
class RemixConfig(_Serialisable):
    """Augmentation of one training block. Every range is (low, high), drawn uniformly per block."""

    prob: float = 0.5  # ours: chance a block is remixed (the paper trains on remixes next to the originals)
    ratio_db: tuple[float, float] = (-5.0, 10.0)  # ours: vocal-to-accompaniment power ratio of a remix;
    # the paper sums the stems as separated; pop mixes put the voice a few dB over the band, and
    # -5 dB keeps some hard, accompaniment-heavy examples
    gain_db: tuple[float, float] = (-6.0, 6.0)  # ours: whole-block level offset (mastering loudness)
    tilt_db_per_octave: tuple[float, float] = (-1.0, 1.0)  # ours: EQ slope around 1 kHz; +-1 dB/oct
    # moves the lowest band (23 Hz, 5.4 octaves down) by up to +-5.4 dB and 8 kHz by +-3 dB

    def __post_init__(self) -> None:
        if not 0.0 <= self.prob <= 1.0:
            raise ParameterError(f"RemixConfig.prob must be in [0, 1], got {self.prob!r}")
        for name in ("ratio_db", "gain_db", "tilt_db_per_octave"):
            low, high = _range(self, name)
            if not (np.isfinite(low) and np.isfinite(high) and low <= high):
                raise ParameterError(f"RemixConfig.{name} must be a finite (low, high) with low <= high, "
                                     f"got {getattr(self, name)!r}")


def _range(cfg: RemixConfig, name: str) -> tuple[float, float]:
    value = getattr(cfg, name)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ParameterError(f"RemixConfig.{name} must be a (low, high) pair, got {value!r}")
    return float(value[0]), float(value[1])


def mel_centres_hz(cfg: FeatureConfig) -> np.ndarray:
    """float64 (n_mels,) centre frequency in Hz of each mel band of ``cfg``'s front end.

    librosa's filter bank places ``n_mels + 2`` points evenly on the (Slaney) mel scale from
    fmin to fmax; band i rises from point i, peaks at point i + 1 and falls to point i + 2, so
    the centres are the inner ``n_mels`` points (23.4 ... 7809 Hz for 128 bands at 16 kHz).
    """
    import librosa  # deferred: importing librosa takes about a second

    fmax = cfg.fmax_hz if cfg.fmax_hz is not None else cfg.sample_rate / 2
    return librosa.mel_frequencies(n_mels=cfg.n_mels + 2, fmin=cfg.fmin_hz, fmax=fmax)[1:-1]


def choose_partners(albums: np.ndarray, singers: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each block, a partner block from another album and another singer, uniformly at random.

    albums, singers: int64 (n,) labels of the blocks (use the training split only). Returns
    int64 (n,) indices into the same arrays. Deterministic given ``rng``'s state. Cost is
    O(n x number of (singer, album) pairs). Raises ParameterError for mismatched or non-1-D
    labels, or when some block has no valid partner (e.g. a single singer).
    """
    albums, singers = np.asarray(albums), np.asarray(singers)
    if albums.ndim != 1 or albums.shape != singers.shape:
        raise ParameterError(f"albums and singers must be 1-D of equal length, got shapes {albums.shape} "
                             f"and {singers.shape}")
    partners = np.empty(albums.shape[0], dtype=np.int64)
    pairs, group = np.unique(np.stack([singers, albums]), axis=1, return_inverse=True)
    for g in range(pairs.shape[1]):  # sorted order: the draws do not depend on the blocks' order of groups
        singer, album = pairs[:, g]
        members = np.flatnonzero(group.ravel() == g)
        valid = np.flatnonzero((singers != singer) & (albums != album))
        if valid.size == 0:
            raise ParameterError(f"block {members[0]} (singer {singer}, album {album}) has no partner from "
                                 "another album and another singer; remixing needs at least 2 singers")
        partners[members] = valid[rng.integers(0, valid.size, size=members.size)]
    return partners


def remix(vocals_db: torch.Tensor, accomp_db: torch.Tensor, ratio_db: torch.Tensor) -> torch.Tensor:
    """Mix vocals and accompaniment blocks in the mel power domain at a given vocal-to-accompaniment ratio.

    With p_v = 10^(v/10), p_a = 10^(a/10) and P_v, P_a their means over (n_mels, frames),
    each floored at amin = 1e-10, the gain g = 10^(ratio_db/10) * P_a / P_v makes
    mean(g p_v) / mean(p_a) = 10^(ratio_db/10). The result is that mixture divided by g, so
    that the vocals keep their level and the accompaniment is scaled instead:

        out = 10 log10(max(p_v + p_a / g, amin))        float32 (b, n_mels, frames) dB

    (the same spectrum as 10 log10(g p_v + p_a) shifted by -10 log10 g dB; keeping the
    vocals' level means near-silent vocal blocks are never amplified, and a very high ratio
    returns the vocals themselves). vocals_db, accomp_db: float32 (b, n_mels, frames) dB;
    ratio_db: float32 (b,). Raises ParameterError for mismatched shapes.
    """
    if vocals_db.ndim != 3 or vocals_db.shape != accomp_db.shape or ratio_db.shape != vocals_db.shape[:1]:
        raise ParameterError(f"remix needs vocals and accompaniment (b, n_mels, frames) of equal shape and "
                             f"ratio_db (b,), got {tuple(vocals_db.shape)}, {tuple(accomp_db.shape)} and "
                             f"{tuple(ratio_db.shape)}")
    p_v = torch.pow(10.0, vocals_db / 10.0)  # (b, n_mels, frames) mel power
    p_a = torch.pow(10.0, accomp_db / 10.0)
    mean_v = p_v.mean(dim=(1, 2)).clamp_min(C.AMIN_POWER)  # (b,)
    mean_a = p_a.mean(dim=(1, 2)).clamp_min(C.AMIN_POWER)
    accomp_scale = mean_v / (mean_a * torch.pow(10.0, ratio_db / 10.0))  # (b,) = 1 / g
    mixed = p_v + p_a * accomp_scale[:, None, None]  # (b, n_mels, frames)
    return (10.0 * torch.log10(mixed.clamp_min(C.AMIN_POWER))).to(vocals_db.dtype)


def apply_gain_tilt(x_db: torch.Tensor, gain_db: torch.Tensor, tilt_db_per_octave: torch.Tensor,
                    mel_centres_hz: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Add a level offset and an EQ slope to log-mel blocks, then re-apply the -100 dB floor.

    out[i, m, t] = max(x[i, m, t] + gain_db[i] + tilt_db_per_octave[i] * log2(f_m / 1 kHz), -100)

    x_db: float32 (b, n_mels, frames) dB; gain_db, tilt_db_per_octave: float32 (b,);
    mel_centres_hz: (n_mels,) positive band centres (``mel_centres_hz(feature_cfg)``). Returns
    float32 (b, n_mels, frames) dB. Raises ParameterError for mismatched shapes or a centre <= 0.
    """
    centres = torch.as_tensor(mel_centres_hz, dtype=torch.float64)
    if x_db.ndim != 3 or gain_db.shape != x_db.shape[:1] or tilt_db_per_octave.shape != x_db.shape[:1] \
            or centres.shape != x_db.shape[1:2]:
        raise ParameterError(f"apply_gain_tilt needs x (b, n_mels, frames), gain and tilt (b,) and centres "
                             f"(n_mels,), got {tuple(x_db.shape)}, {tuple(gain_db.shape)}, "
                             f"{tuple(tilt_db_per_octave.shape)} and {tuple(centres.shape)}")
    if not bool((centres > 0).all()):
        raise ParameterError("mel band centres must be > 0 Hz for a tilt in dB per octave")
    octaves = torch.log2(centres / TILT_PIVOT_HZ).to(x_db.dtype).to(x_db.device)  # (n_mels,)
    offset = gain_db[:, None] + tilt_db_per_octave[:, None] * octaves[None, :]  # (b, n_mels)
    return (x_db + offset[:, :, None]).clamp_min(FLOOR_DB)


@dataclass(frozen=True, slots=True)
class AugmentDraw:
    """The random parameters of one augmented batch, float32 / bool numpy (b,) each."""

    remixed: np.ndarray  # bool: whether the block was remixed with its partner's accompaniment
    ratio_db: np.ndarray  # vocal-to-accompaniment ratio of remixed blocks (drawn for all)
    gain_db: np.ndarray
    tilt_db_per_octave: np.ndarray


class Augmenter:
    """Shuffle-and-remix, gain and tilt for training batches; deterministic under (seed, epoch, batch).

    ``augmenter(vocals_db, accomp_db, epoch=e, batch=i)`` -> float32 (b, n_mels, frames) dB.
    """

    def __init__(self, cfg: RemixConfig, mel_centres_hz: np.ndarray, seed: int) -> None:
        self.cfg = cfg
        self.mel_centres_hz = np.asarray(mel_centres_hz, dtype=np.float64)  # (n_mels,)
        self.seed = int(seed)

    def draw(self, n_blocks: int, *, epoch: int, batch: int = 0) -> AugmentDraw:
        """The parameters for a batch of ``n_blocks``: a pure function of (seed, epoch, batch, n_blocks)."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch], spawn_key=(2, batch)))  # own stream
        uniform = lambda name: rng.uniform(*_range(self.cfg, name), size=n_blocks).astype(np.float32)  # noqa: E731
        remixed = rng.random(n_blocks) < self.cfg.prob
        return AugmentDraw(remixed, uniform("ratio_db"), uniform("gain_db"), uniform("tilt_db_per_octave"))

    def __call__(self, vocals_db: torch.Tensor, accomp_db: torch.Tensor, *, epoch: int, batch: int = 0,
                 mixture_db: torch.Tensor | None = None) -> torch.Tensor:
        """Augment one batch.

        vocals_db: float32 (b, n_mels, frames) separated vocals of the batch's blocks;
        accomp_db: the same shape, separated accompaniment of each block's partner
        (``choose_partners``); mixture_db: optional original mixtures of the batch's blocks,
        the output of blocks that are not remixed (default: their vocals). Returns float32
        (b, n_mels, frames) dB on the input's device. Raises ParameterError for mismatched shapes.
        """
        if mixture_db is not None and mixture_db.shape != vocals_db.shape:
            raise ParameterError(f"mixture_db shape {tuple(mixture_db.shape)} differs from vocals_db shape "
                                 f"{tuple(vocals_db.shape)}")
        params = self.draw(int(vocals_db.shape[0]), epoch=epoch, batch=batch)
        tensor = lambda a: torch.from_numpy(a).to(vocals_db.device)  # noqa: E731
        keep = vocals_db if mixture_db is None else mixture_db
        if params.remixed.any():  # gain/tilt-only training (prob 0) never pays for the remix
            mixed = remix(vocals_db, accomp_db, tensor(params.ratio_db))  # (b, n_mels, frames)
            x = torch.where(tensor(params.remixed)[:, None, None], mixed, keep)  # (b, n_mels, frames)
        else:
            x = keep
        return apply_gain_tilt(x, tensor(params.gain_db), tensor(params.tilt_db_per_octave), self.mel_centres_hz)


"""Shuffle-and-remix, gain and tilt: shapes, determinism, partner rules, exact arithmetic."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from singerid.config import FeatureConfig
from singerid.embedder.augment import (
    FLOOR_DB,
    Augmenter,
    RemixConfig,
    apply_gain_tilt,
    choose_partners,
    mel_centres_hz,
    remix,
)
from singerid.errors import ParameterError

N_MELS, FRAMES = 128, 32


def _blocks(n: int, seed: int, level_db: float = -30.0) -> torch.Tensor:
    """float32 (n, 128, 32) random log-mel dB blocks around ``level_db``."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy((level_db + 10.0 * rng.standard_normal((n, N_MELS, FRAMES))).astype(np.float32))


def _mean_power(x_db: torch.Tensor) -> torch.Tensor:
    return torch.pow(10.0, x_db.double() / 10.0).mean(dim=(1, 2))


@pytest.fixture
def augmenter() -> Augmenter:
    return Augmenter(RemixConfig(prob=0.5), mel_centres_hz(FeatureConfig()), seed=7)


def test_mel_centres_are_the_filter_bank_peaks():
    import librosa

    cfg = FeatureConfig()
    centres = mel_centres_hz(cfg)
    filters = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin_hz)
    peak_hz = filters.argmax(axis=1) * cfg.sample_rate / cfg.n_fft  # FFT bin of each band's peak
    assert centres.shape == (128,) and centres[0] > 0 and np.all(np.diff(centres) > 0)
    assert np.all(np.abs(peak_hz - centres) <= cfg.sample_rate / cfg.n_fft)  # within one FFT bin


def test_config_round_trips_through_json():
    cfg = RemixConfig(prob=0.25, ratio_db=(0.0, 6.0))
    assert RemixConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.to_dict()["ratio_db"] == [0.0, 6.0]
    with pytest.raises(ParameterError, match="ratio_db"):
        RemixConfig(ratio_db=(10.0, -5.0))
    with pytest.raises(ParameterError, match="prob"):
        RemixConfig(prob=1.5)


def test_partners_come_from_another_album_and_singer_and_are_seeded():
    singers = np.repeat(np.arange(4), 30)  # 4 singers x 3 albums x 10 blocks
    albums = np.repeat(np.arange(12), 10)
    albums[::7] = 0  # album 0 also holds some blocks of other singers (a compilation)
    partners = choose_partners(albums, singers, np.random.default_rng(3))
    assert partners.dtype == np.int64 and partners.shape == singers.shape
    assert np.all(albums[partners] != albums) and np.all(singers[partners] != singers)
    assert np.array_equal(partners, choose_partners(albums, singers, np.random.default_rng(3)))
    assert not np.array_equal(partners, choose_partners(albums, singers, np.random.default_rng(4)))
    assert len(np.unique(partners)) > 60  # spread over the valid blocks, not one favourite


def test_partners_without_a_valid_choice_raise():
    with pytest.raises(ParameterError, match="no partner from another album and another singer"):
        choose_partners(np.array([0, 1, 2]), np.array([5, 5, 5]), np.random.default_rng(0))
    with pytest.raises(ParameterError, match="equal length"):
        choose_partners(np.array([0, 1]), np.array([0, 1, 2]), np.random.default_rng(0))


def test_remix_achieves_the_requested_ratio():
    vocals, accomp = _blocks(6, 1, -20.0), _blocks(6, 2, -45.0)
    ratio = torch.tensor([-5.0, 0.0, 3.0, 6.0, 10.0, 20.0])
    out = remix(vocals, accomp, ratio)
    assert out.shape == vocals.shape and out.dtype == torch.float32
    # out = vocals + accompaniment x 1/g; recover the accompaniment part and measure the ratio back
    accomp_part = torch.pow(10.0, out.double() / 10) - torch.pow(10.0, vocals.double() / 10)
    measured = 10 * torch.log10(_mean_power(vocals) / accomp_part.mean(dim=(1, 2)))
    assert torch.allclose(measured, ratio.double(), atol=0.02)
    # the accompaniment part is the partner's spectrum, only scaled (float64 in, float64 arithmetic)
    exact = remix(vocals.double(), accomp.double(), ratio.double())
    power = lambda x_db: torch.pow(10.0, x_db.double() / 10)  # noqa: E731
    shape = (power(exact) - power(vocals)) / power(accomp)
    assert torch.allclose(shape / shape.mean(dim=(1, 2), keepdim=True), torch.ones_like(shape), atol=1e-6)


def test_remix_at_a_huge_ratio_returns_the_vocals():
    vocals, accomp = _blocks(3, 1), _blocks(3, 2)
    out = remix(vocals, accomp, torch.full((3,), 150.0))
    assert torch.allclose(out, vocals, atol=1e-4)


def test_remix_keeps_silent_blocks_at_the_floor_and_finite():
    silent = torch.full((2, N_MELS, FRAMES), FLOOR_DB)
    out = remix(silent, silent, torch.tensor([0.0, 10.0]))
    assert torch.isfinite(out).all() and out.min() >= FLOOR_DB - 1e-4 and out.max() < FLOOR_DB + 3.1


def test_gain_and_tilt_are_exact_on_a_flat_spectrum():
    centres = mel_centres_hz(FeatureConfig())
    flat = torch.full((3, N_MELS, FRAMES), -40.0)
    gain, tilt = torch.tensor([0.0, 6.0, -3.0]), torch.tensor([0.0, 0.0, 2.0])
    out = apply_gain_tilt(flat, gain, tilt, centres)
    assert torch.equal(out[0], flat[0])
    assert torch.allclose(out[1], torch.full((N_MELS, FRAMES), -34.0))
    expected = -43.0 + 2.0 * np.log2(centres / 1000.0)  # (n_mels,)
    assert np.allclose(out[2].numpy(), expected[:, None].repeat(FRAMES, axis=1), atol=1e-4)
    band_1k = int(np.argmin(np.abs(centres - 1000.0)))  # the tilt's pivot moves only by the gain
    assert abs(float(out[2, band_1k, 0]) + 43.0) < 2.0 * abs(np.log2(centres[band_1k] / 1000.0)) + 1e-4


def test_gain_never_goes_below_the_feature_floor():
    out = apply_gain_tilt(torch.full((1, N_MELS, FRAMES), -98.0), torch.tensor([-6.0]), torch.tensor([0.0]),
                          mel_centres_hz(FeatureConfig()))
    assert torch.all(out == FLOOR_DB)


def test_augmenter_keeps_shape_and_is_seeded(augmenter):
    vocals, accomp = _blocks(16, 1), _blocks(16, 2)
    first = augmenter(vocals, accomp, epoch=1, batch=0)
    assert first.shape == vocals.shape and first.dtype == torch.float32
    assert torch.equal(first, augmenter(vocals, accomp, epoch=1, batch=0))
    assert not torch.equal(first, augmenter(vocals, accomp, epoch=2, batch=0))
    assert not torch.equal(first, augmenter(vocals, accomp, epoch=1, batch=1))
    other = Augmenter(augmenter.cfg, augmenter.mel_centres_hz, seed=8)
    assert not torch.equal(first, other(vocals, accomp, epoch=1, batch=0))


def test_augmenter_remixes_the_drawn_blocks_and_keeps_the_others(augmenter):
    vocals, accomp, mixture = _blocks(32, 1), _blocks(32, 2), _blocks(32, 3)
    draw = augmenter.draw(32, epoch=3)
    assert 0 < draw.remixed.sum() < 32  # prob 0.5 over 32 blocks
    out = augmenter(vocals, accomp, epoch=3, mixture_db=mixture)
    plain = apply_gain_tilt(mixture, torch.from_numpy(draw.gain_db), torch.from_numpy(draw.tilt_db_per_octave),
                            augmenter.mel_centres_hz)
    mixed = apply_gain_tilt(remix(vocals, accomp, torch.from_numpy(draw.ratio_db)), torch.from_numpy(draw.gain_db),
                            torch.from_numpy(draw.tilt_db_per_octave), augmenter.mel_centres_hz)
    keep = torch.from_numpy(draw.remixed)
    assert torch.equal(out[keep], mixed[keep]) and torch.equal(out[~keep], plain[~keep])


def test_augmenter_leaves_torch_random_state_alone(augmenter):
    torch.manual_seed(0)
    augmenter(_blocks(4, 1), _blocks(4, 2), epoch=1)
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(1))


def test_mismatched_shapes_raise():
    with pytest.raises(ParameterError, match="remix needs"):
        remix(_blocks(2, 1), _blocks(3, 2), torch.zeros(2))
    with pytest.raises(ParameterError, match="apply_gain_tilt needs"):
        apply_gain_tilt(_blocks(2, 1), torch.zeros(2), torch.zeros(2), np.ones(64))

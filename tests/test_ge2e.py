"""The off-the-shelf GE2E speaker encoder: pinned weights, block alignment, embeddings, errors."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator

import numpy as np
import pytest

from singerid.audio import LogMel, block_starts, segment_blocks
from singerid.config import FeatureConfig
from singerid.datasets.synth_score import compose_song
from singerid.datasets.synth_voice import draw_voice, render_voice
from singerid.embedder.ge2e import (
    EMBEDDING_DIM, WEIGHTS_SHA256, Ge2eEncoder, Ge2eNetwork, find_weights, load_state, power_mel,
)
from singerid.errors import ArtefactError, AudioError, ParameterError

SR = 16_000
BLOCK = 16_384  # 32 frames x 512 hop


@pytest.fixture(scope="module")
def encoder() -> Iterator[Ge2eEncoder]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tests share 2 cores
    yield Ge2eEncoder.load()
    torch.set_num_threads(before)


def sing(register: str, voice_seed: int, song_seed: int, *, seconds: float = 8.0) -> np.ndarray:
    """One synthetic singer (fixed by ``voice_seed``) singing a new melody: float32 (n,), peak 0.1."""
    voice = draw_voice(np.random.default_rng([voice_seed, 1]), register)
    rng = np.random.default_rng([voice_seed, song_seed])
    score = compose_song(seconds=seconds, tempo_bpm=100.0, beats_per_bar=4, key_root=song_seed % 12, mode="major",
                         progression=(0, 3, 4, 0), low_midi=voice.low_midi, high_midi=voice.high_midi, rng=rng)
    y = render_voice(voice, score.melody, n_samples=int(seconds * SR), sample_rate=SR, rng=rng)
    return (0.1 * y / np.max(np.abs(y))).astype(np.float32)


# --- weights ---------------------------------------------------------------------------------

def test_the_pinned_weights_load_strictly_into_our_network(encoder):
    state = load_state()
    ours = Ge2eNetwork().state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == {k: tuple(v.shape) for k, v in ours.items()}
    assert state["lstm.weight_ih_l0"].shape == (4 * 256, 40) and state["linear.weight"].shape == (256, 256)
    assert encoder.weights_sha256 == WEIGHTS_SHA256 and encoder.device == "cpu"
    assert Ge2eEncoder.load(weights=find_weights()).embedding_dim == EMBEDDING_DIM == 256


def test_a_tampered_or_missing_weight_file_is_refused(tmp_path):
    data = bytearray(find_weights().read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered = tmp_path / "pretrained.pt"
    tampered.write_bytes(bytes(data))
    with pytest.raises(ArtefactError) as err:
        Ge2eEncoder.load(weights=tampered)
    assert str(err.value).startswith(f"{tampered}: SHA-256 ")
    assert "is not that of resemblyzer 0.1.4's pretrained.pt (39373b86598f...)" in str(err.value)
    assert str(err.value).endswith("reinstall with `pip install --no-deps resemblyzer==0.1.4`")
    with pytest.raises(ArtefactError, match="cannot read the GE2E weights"):
        load_state(tmp_path / "absent.pt")


def test_without_resemblyzer_the_error_says_how_to_install_it(monkeypatch):
    def not_installed(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(ArtefactError) as err:
        Ge2eEncoder.load()
    assert str(err.value) == ("the GE2E encoder needs the weights of resemblyzer 0.1.4, which is not installed; "
                              "run `pip install --no-deps resemblyzer==0.1.4`")


# --- embeddings ------------------------------------------------------------------------------

def test_embeddings_are_float32_unit_norm_and_batch_independent(encoder):
    rng = np.random.default_rng(0)
    blocks = np.concatenate([sing("tenor", 1, 1, seconds=3 * BLOCK / SR).reshape(3, BLOCK),
                             (0.05 * rng.standard_normal((2, BLOCK))).astype(np.float32),
                             np.zeros((1, BLOCK), dtype=np.float32)])  # digital silence too
    emb = encoder.embed_waveform_blocks(blocks)
    assert emb.shape == (6, 256) and emb.dtype == np.float32 and emb.flags.c_contiguous
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5) and (emb >= 0).all()
    assert np.allclose(encoder.embed_waveform_blocks(blocks, batch_size=2), emb, atol=1e-5)
    assert encoder.embed_waveform_blocks(np.zeros((0, BLOCK), dtype=np.float32)).shape == (0, 256)
    quieter, quietest = (encoder.embed_waveform_blocks(g * blocks[:3]) for g in (0.1, 0.001))
    assert np.allclose(quieter, quietest, atol=1e-4)  # both raised to -30 dBFS, as resemblyzer does


def test_power_mel_is_resemblyzers_per_block():
    import librosa

    blocks = (0.1 * np.random.default_rng(1).standard_normal((2, BLOCK))).astype(np.float32)
    mel = power_mel(blocks)
    assert mel.shape == (2, 1 + BLOCK // 160, 40) and mel.dtype == np.float32
    one = librosa.feature.melspectrogram(y=blocks[1], sr=SR, n_fft=400, hop_length=160, n_mels=40)
    assert np.allclose(mel[1], one.astype(np.float32).T, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("n_samples", [BLOCK - 1, BLOCK, 3 * BLOCK - 512, 3 * BLOCK + 700])
def test_waveform_blocks_are_our_logmel_blocks(encoder, n_samples):
    wave = (0.1 * np.random.default_rng(n_samples).standard_normal(n_samples)).astype(np.float32)
    cfg = FeatureConfig()
    logmel_blocks = segment_blocks(LogMel(cfg)(wave), block_frames=cfg.block_frames,
                                   block_hop_frames=cfg.block_hop_frames)
    emb, offsets = encoder.embed_waveform(wave)
    starts = block_starts(1 + n_samples // cfg.hop_samples, block_frames=cfg.block_frames,
                          block_hop_frames=cfg.block_hop_frames)
    assert emb.shape == (len(logmel_blocks), 256) and offsets.dtype == np.float64
    assert np.array_equal(offsets, starts * cfg.hop_samples / cfg.sample_rate)
    padded = np.concatenate([wave, np.zeros(BLOCK, dtype=np.float32)])
    by_hand = np.stack([padded[s:s + BLOCK] for s in starts * cfg.hop_samples])
    assert np.allclose(emb, encoder.embed_waveform_blocks(by_hand), atol=1e-6)


def test_other_sample_rates_are_resampled_first(encoder):
    wave = sing("alto", 2, 1, seconds=3.0)
    import soxr

    emb, offsets = encoder.embed_waveform(soxr.resample(wave, SR, 22050).astype(np.float32), sample_rate=22050)
    direct, direct_offsets = encoder.embed_waveform(wave)
    assert emb.shape == direct.shape and np.array_equal(offsets, direct_offsets)
    assert np.mean(np.sum(emb * direct, axis=1)) > 0.99


def test_the_same_voice_is_closer_than_another_singer(encoder):
    registers = ("bass", "tenor", "alto", "soprano")  # one singer each, two songs each
    emb = {(i, s): encoder.embed_waveform(sing(r, 10 + i, s))[0] for i, r in enumerate(registers) for s in (1, 2)}
    same = np.mean([(emb[i, 1] @ emb[i, 2].T).mean() for i in range(len(registers))])
    other = np.mean([(emb[i, a] @ emb[j, b].T).mean() for i in range(len(registers)) for j in range(i)
                     for a in (1, 2) for b in (1, 2)])
    assert same > other  # measured 0.58-0.63 vs 0.54-0.57: a speech encoder hears singers only faintly


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("blocks, error, message", [
    ([[0.0] * BLOCK], ParameterError, "blocks must be an array (n, block_samples) with block_samples >= 400, got list"),
    (np.zeros(BLOCK, dtype=np.float32), ParameterError,
     "blocks must be an array (n, block_samples) with block_samples >= 400, got (16384,)"),
    (np.zeros((2, 100), dtype=np.float32), ParameterError,
     "blocks must be an array (n, block_samples) with block_samples >= 400, got (2, 100)"),
    (np.zeros((2, BLOCK)), ParameterError, "blocks must be float32 samples, got dtype float64"),
    (np.where(np.arange(2 * BLOCK).reshape(2, BLOCK) == 5, np.nan, 0.0).astype(np.float32), AudioError,
     "blocks contain NaN or infinite samples (1 of 2 blocks)"),
])
def test_bad_blocks(encoder, blocks, error, message):
    with pytest.raises(error) as err:
        encoder.embed_waveform_blocks(blocks)
    assert str(err.value) == message


@pytest.mark.parametrize("args, kwargs, error, message", [
    ((np.zeros((2, BLOCK), dtype=np.float32),), {}, ParameterError, "wave must be a mono array (n,), got (2, 16384)"),
    ((np.zeros(BLOCK, dtype=np.int16),), {}, ParameterError, "wave must be float32 samples, got dtype int16"),
    ((np.full(BLOCK, np.inf, dtype=np.float32),), {}, AudioError,
     "wave contains NaN or infinite samples (16384 of 16384)"),
    ((np.zeros(8000, dtype=np.float32),), {}, AudioError, "0.50 s of audio is shorter than one block (1.02 s)"),
    ((np.zeros(BLOCK, dtype=np.float32), 0), {}, ParameterError, "sample_rate must be a positive integer (Hz), got 0"),
    ((np.zeros(BLOCK, dtype=np.float32),), {"block_samples": 16000}, ParameterError,
     "block_samples must be a positive multiple of the log-mel hop (512 samples), got 16000"),
    ((np.zeros(BLOCK, dtype=np.float32),), {"hop_samples": 2 * BLOCK}, ParameterError,
     "hop_samples=32768 must not exceed block_samples=16384"),
    ((np.zeros(BLOCK, dtype=np.float32),), {"batch_size": 0}, ParameterError,
     "batch_size must be a positive integer, got 0"),
])
def test_bad_waves(encoder, args, kwargs, error, message):
    with pytest.raises(error) as err:
        encoder.embed_waveform(*args, **kwargs)
    assert str(err.value) == message


def test_bad_device():
    with pytest.raises(ParameterError, match="^unsupported device 'meta': use 'cpu' or 'cuda'$"):
        Ge2eEncoder.load("meta")

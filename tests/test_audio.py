"""Audio front end: decoding, log-mel definition, streaming = whole, block boundaries."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import librosa

from singerid.audio import (
    LogMel, block_starts, compute_logmel, iter_song_blocks, load_audio, n_blocks, segment_blocks, song_blocks,
    stream_blocks,
)
from singerid.config import FeatureConfig
from singerid.errors import ParameterError

CFG = FeatureConfig()


def test_defaults_are_the_papers_block():
    assert (CFG.sample_rate, CFG.n_fft, CFG.hop_samples, CFG.n_mels, CFG.block_frames) == (16000, 2048, 512, 128, 32)
    assert CFG.block_seconds == pytest.approx(1.024)
    assert CFG.frames_per_second == pytest.approx(31.25)


def test_logmel_equals_librosa_definition():
    x = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1
    ours = LogMel(CFG)(x)
    ref = librosa.power_to_db(
        librosa.feature.melspectrogram(y=x, sr=16000, n_fft=2048, hop_length=512, n_mels=128, pad_mode="constant"),
        ref=1.0, top_db=None,
    )
    assert ours.shape == ref.shape == (128, 1 + x.size // 512)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=1e-3)


@pytest.mark.parametrize("n_chunks", [1, 3, 17])
def test_streamed_logmel_equals_whole(n_chunks):
    x = np.random.default_rng(1).standard_normal(16000 * 5 + 123).astype(np.float32)
    front = LogMel(CFG)
    whole = front(x)
    streamed = np.concatenate(list(front.stream(np.array_split(x, n_chunks))), axis=1)
    np.testing.assert_array_equal(whole, streamed)


def test_block_boundaries():
    assert n_blocks(31, block_frames=32, block_hop_frames=32) == 0
    assert n_blocks(32, block_frames=32, block_hop_frames=32) == 1
    assert n_blocks(95, block_frames=32, block_hop_frames=32) == 2  # trailing partial dropped
    assert n_blocks(64, block_frames=32, block_hop_frames=16) == 3
    assert block_starts(80, block_frames=32, block_hop_frames=16).tolist() == [0, 16, 32, 48]
    spec = np.arange(2 * 70, dtype=np.float32).reshape(2, 70)
    blocks = segment_blocks(spec, block_frames=32, block_hop_frames=32)
    assert blocks.shape == (2, 2, 32)
    np.testing.assert_array_equal(blocks[1], spec[:, 32:64])


@pytest.mark.parametrize("hop", [32, 16, 8])
def test_stream_blocks_equal_segment_blocks(hop):
    cfg = FeatureConfig(block_hop_frames=hop)
    spec = np.random.default_rng(2).standard_normal((128, 300)).astype(np.float32)
    pieces = np.array_split(spec, [7, 50, 51, 190], axis=1)
    batches = list(stream_blocks(pieces, cfg))
    streamed = np.concatenate([b.blocks for b in batches])
    offsets = np.concatenate([b.offsets_seconds for b in batches])
    expected = segment_blocks(spec, block_frames=32, block_hop_frames=hop)
    np.testing.assert_array_equal(streamed, expected)
    np.testing.assert_allclose(offsets, np.arange(len(expected)) * hop * 512 / 16000)


def test_block_hop_larger_than_block_is_refused():
    with pytest.raises(ParameterError, match="block_hop_frames=40 must not exceed block_frames=32"):
        FeatureConfig(block_hop_frames=40)


def test_stereo_44k_is_mixed_and_resampled(tone):
    path = tone("stereo.wav", seconds=2.0, sample_rate=44100, channels=2)
    x = load_audio(path, sample_rate=16000)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(x.size - 32000) <= 2


@pytest.mark.parametrize("fmt,ext", [("WAV", "wav"), ("FLAC", "flac"), ("OGG", "ogg"), ("MP3", "mp3")])
def test_decodes_common_formats(tone, fmt, ext):
    path = tone(f"song.{ext}", seconds=2.5, fmt=fmt)
    batch = song_blocks(path, CFG)
    assert len(batch) == 2
    assert batch.blocks.shape == (2, 128, 32)
    assert np.isfinite(batch.blocks).all()


def test_long_file_streams_in_chunks_with_same_blocks(tone):
    path = tone("long.flac", seconds=12.0, fmt="FLAC")
    whole = segment_blocks(compute_logmel(path, CFG), block_frames=32, block_hop_frames=32)
    chunked = np.concatenate([b.blocks for b in iter_song_blocks(path, CFG, chunk_seconds=2.5)])
    assert chunked.shape == whole.shape == (11, 128, 32)
    np.testing.assert_allclose(chunked, whole, atol=1e-3)  # resampler is streamed: tiny edge differences


def test_silence_threshold_drops_quiet_blocks(tmp_path):
    sr = 16000
    t = np.arange(sr * 4) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t)
    x[sr * 2:] *= 1e-3  # second half 60 dB quieter
    path = tmp_path / "half_quiet.wav"
    sf.write(path, x.astype(np.float32), sr)
    all_blocks = song_blocks(path, CFG)
    loud_only = song_blocks(path, FeatureConfig(silence_db=-30.0))
    assert len(all_blocks) == 3
    assert 0 < len(loud_only) < len(all_blocks)
    assert loud_only.offsets_seconds[0] == 0.0

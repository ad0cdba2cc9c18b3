"""Training on a tiny generated corpus: learning, files, bad data, resume, the `train` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from embed_corpus import make_tracks

from singerid.cli import main
from singerid.config import FeatureConfig, ModelConfig, TrainConfig
from singerid.datasets import load_dataset
from singerid.datasets.synth import CorpusSpec, generate_corpus
from singerid.embedder import checkpoint as ckpt
from singerid.embedder.cache import FeatureCache
from singerid.embedder.embed import Embedder
from singerid.embedder.train import data_fingerprint, train_embedder
from singerid.errors import AudioError, DatasetError, ParameterError
from singerid.records import Track

N_SINGERS = 4
FAST = TrainConfig(epochs=4, batch_size=8, lr=3e-3, patience=4, seed=0)  # ours: enough for the easy corpus


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Track]]:
    """4 singers x (3 train + 1 val + 1 test) songs x 5 s, folder layout, written once."""
    root = tmp_path_factory.mktemp("embed_corpus")
    return root, make_tracks(root, singers=N_SINGERS, train_songs=3, val_songs=1, test_songs=1, seconds=5.0)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 singers x 4 songs (song split 2/1/1) x 3.2 s = 3 blocks each: the quickest thing to train."""
    root = tmp_path_factory.mktemp("tiny_corpus")
    make_tracks(root, singers=3, train_songs=4, val_songs=0, seconds=3.2)
    return root


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The product's synthetic-singer corpus, tiny: 3 singers x 3 albums (split 1/1/1) x 1 song x 4 s."""
    root = tmp_path_factory.mktemp("synth") / "corpus"
    generate_corpus(root, CorpusSpec(singers=3, albums=3, songs_per_album=1, seconds=4.0, seed=0,
                                     audio_format="flac"), workers=1)
    return root


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("feature_cache")


def _train(tracks, out: Path, cache: Path, kind: str = "attcrnn", cfg: TrainConfig = FAST, progress: bool = False):
    return train_embedder(tracks, feature_cfg=FeatureConfig(), model_cfg=ModelConfig(kind=kind), train_cfg=cfg,
                          out_dir=out, cache_dir=cache, progress=progress)


@pytest.mark.parametrize("kind", ["crnn", "attcrnn"])
def test_a_few_epochs_beat_chance_by_a_wide_margin(corpus, cache_dir: Path, tmp_path: Path, kind: str) -> None:
    _, tracks = corpus
    result = _train(tracks, tmp_path / kind, cache_dir, kind)
    chance = 1 / N_SINGERS
    assert result.val_block_accuracy >= chance + 0.35, [r.val_accuracy for r in result.history]
    assert result.epochs_run == 4 and 1 <= result.best_epoch <= 4
    assert result.val_block_accuracy == max(r.val_accuracy for r in result.history)
    assert result.singers == tuple(f"singer{i}" for i in range(N_SINGERS))
    assert (result.n_train_blocks, result.n_val_blocks) == (N_SINGERS * 3 * 4, N_SINGERS * 4)  # 5 s = 4 blocks

    files = sorted(p.name for p in (tmp_path / kind).iterdir())
    assert files == [ckpt.SIDECAR_FILE, ckpt.WEIGHTS_FILE, ckpt.LOG_FILE]  # last.pt removed when done
    card = json.loads((tmp_path / kind / ckpt.SIDECAR_FILE).read_text())
    assert card["metrics"]["val_block_accuracy"] == result.val_block_accuracy
    assert card["training"]["best_epoch"] == result.best_epoch and card["model_config"]["n_classes"] == N_SINGERS
    log = json.loads((tmp_path / kind / ckpt.LOG_FILE).read_text())
    assert log["finished"] and [e["epoch"] for e in log["epochs"]] == [1, 2, 3, 4]
    assert set(log["epochs"][0]) == {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds",
                                     "best"}

    # the kept weights are the best epoch's: the embedder's argmax reproduces its val accuracy
    emb = Embedder.load(tmp_path / kind)
    cfg = emb.feature_config
    cache = FeatureCache(cache_dir, cfg)
    correct = total = 0
    for t in (t for t in tracks if t.split == "val"):
        frames = cache.logmel(t.path)  # (frames, n_mels)
        blocks = np.stack([frames[s:s + 32].T for s in range(0, frames.shape[0] - 31, 32)]).astype(np.float32)
        correct += int((emb.logits(blocks).argmax(1) == emb.singers.index(t.singer)).sum())
        total += len(blocks)
    assert correct / total == pytest.approx(result.val_block_accuracy)


def test_bf16_training_saves_float32_weights(corpus, cache_dir: Path, tmp_path: Path) -> None:
    _, tracks = corpus
    cfg = TrainConfig(epochs=1, batch_size=16, patience=1)
    result = train_embedder(tracks, feature_cfg=FeatureConfig(), model_cfg=ModelConfig(), train_cfg=cfg,
                            out_dir=tmp_path / "m", cache_dir=cache_dir, precision="bf16")
    assert result.epochs_run == 1 and all(np.isfinite(r.train_loss) for r in result.history)
    card = json.loads((tmp_path / "m" / ckpt.SIDECAR_FILE).read_text())
    assert card["training"]["precision"] == "bf16"
    assert card["training"]["data_fingerprint"] == data_fingerprint(tracks, feature_cfg=FeatureConfig(),
                                                                    cache_dir=cache_dir)
    emb = Embedder.load(tmp_path / "m")
    assert all(p.dtype == torch.float32 for p in emb._model.parameters())
    with pytest.raises(ParameterError, match="precision must be one of fp32, bf16, got 'fp16'"):
        train_embedder(tracks, feature_cfg=FeatureConfig(), model_cfg=ModelConfig(), train_cfg=cfg,
                       out_dir=tmp_path / "m", cache_dir=cache_dir, precision="fp16")


def test_feature_cache_reads_no_audio_the_second_time(corpus, tmp_path: Path) -> None:
    _, tracks = corpus
    cfg = FeatureConfig()
    first = FeatureCache(tmp_path / "c", cfg)
    a = first.logmel(tracks[0].path)
    assert (first.hits, first.misses) == (0, 1)
    assert a.shape[1] == 128 and a.dtype == np.float32 and isinstance(a, np.memmap)
    from singerid.audio import compute_logmel
    assert np.array_equal(a, compute_logmel(tracks[0].path, cfg).T)

    copy = tmp_path / "renamed.wav"
    copy.write_bytes(tracks[0].path.read_bytes())
    second = FeatureCache(tmp_path / "c", cfg)
    assert np.array_equal(second.logmel(copy), a)  # keyed by content, not by path
    assert (second.hits, second.misses) == (1, 0)
    other = FeatureCache(tmp_path / "c", FeatureConfig(n_mels=64))
    assert other.logmel(copy).shape[1] == 64 and other.misses == 1  # another config is another entry
    with pytest.raises(AudioError, match="no such file"):
        second.ensure(tmp_path / "missing.wav")


def test_bad_audio_is_skipped_and_counted(corpus, cache_dir: Path, tmp_path: Path) -> None:
    _, tracks = corpus
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt garbage")
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(16_000 * 3, np.float32), 16_000)
    extra = [Track(path=broken, singer="singer0", song_id="x/broken", split="train"),
             Track(path=silent, singer="singer1", song_id="x/silent", split="val")]
    cfg = TrainConfig(epochs=1, batch_size=16, patience=1)
    result = _train([*tracks, *extra], tmp_path / "m", cache_dir, cfg=cfg, progress=True)
    assert len(result.skipped) == 2 and str(broken) in result.skipped[0] and "silent" in result.skipped[1]
    log = json.loads((tmp_path / "m" / ckpt.LOG_FILE).read_text())
    assert log["skipped"] == list(result.skipped)
    assert json.loads((tmp_path / "m" / ckpt.SIDECAR_FILE).read_text())["training"]["skipped_tracks"] == 2


def test_unusable_splits_are_dataset_errors(corpus, cache_dir: Path, tmp_path: Path) -> None:
    _, tracks = corpus
    with pytest.raises(DatasetError, match=r"no tracks in the 'val' split \(12 tracks given\)"):
        _train([t for t in tracks if t.split == "train"], tmp_path, cache_dir)
    stranger = Track(path=tracks[0].path, singer="zoe", song_id="zoe/1", split="val")
    with pytest.raises(DatasetError, match=r"validation singer\(s\) \['zoe'\] have no usable training track"):
        _train([*tracks, stranger], tmp_path, cache_dir)
    with pytest.raises(ParameterError, match="ModelConfig.n_mels=128 does not match FeatureConfig.n_mels=64"):
        train_embedder(tracks, feature_cfg=FeatureConfig(n_mels=64), model_cfg=ModelConfig(), train_cfg=FAST,
                       out_dir=tmp_path, cache_dir=cache_dir)


def _cli_args(root: Path, home: Path, cache: Path, *extra: str) -> list[str]:
    return ["train", str(root), "--dataset", "folder", "--home", str(home), "--cache-dir", str(cache),
            "--batch-size", "8", "--lr", "3e-3", "--threads", "1", "--recipe", "paper", *extra]


def test_interrupted_training_resumes_where_it_stopped(tiny_corpus: Path, cache_dir: Path, tmp_path: Path) -> None:
    root = tiny_corpus
    home = tmp_path / "home"
    args = _cli_args(root, home, cache_dir, "--epochs", "5", "--patience", "5")
    env = {**os.environ, "SINGERID_NO_PROGRESS": "1"}
    state = home / "models" / "attcrnn" / ckpt.STATE_FILE
    proc = subprocess.Popen([sys.executable, "-m", "singerid", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert state.exists(), proc.communicate()[1].decode()[-2000:]
        proc.send_signal(signal.SIGKILL)  # no chance to clean up: like a power cut
    finally:
        proc.wait(timeout=60)
    log_path = home / "models" / "attcrnn" / ckpt.LOG_FILE
    before = json.loads(log_path.read_text())
    assert not before["finished"] and 1 <= len(before["epochs"]) < 5
    assert not (home / "models" / "attcrnn" / ckpt.WEIGHTS_FILE).exists()

    with pytest.raises(SystemExit) as exit_:  # the same command again, run in-process to save an import
        main(args)
    assert exit_.value.code == 0
    after = json.loads(log_path.read_text())
    assert after["finished"] and [e["epoch"] for e in after["epochs"]] == list(range(1, 6))
    assert after["epochs"][:len(before["epochs"])] == before["epochs"]  # the old epochs were kept, not rerun
    assert not state.exists()

    # resuming changes nothing: an uninterrupted run with the same seed logs the same losses
    tracks = load_dataset(root, kind="folder").tracks
    straight = _train(tracks, tmp_path / "straight", cache_dir,
                      cfg=TrainConfig(epochs=5, batch_size=8, lr=3e-3, patience=5, seed=0))
    assert [r.val_loss for r in straight.history] == [e["val_loss"] for e in after["epochs"]]


def test_train_command_end_to_end(synth_corpus: Path, cache_dir: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    args = ["train", str(synth_corpus), "--model", "crnn", "--home", str(home), "--epochs", "2", "--threads", "1",
            "--workers", "1", "--json"]  # --dataset auto finds artist20's layout; cache in HOME
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "crnn" and out["dataset"] == "artist20" and out["epochs_run"] == 2
    assert out["singers"] == 3 and out["n_train_blocks"] == 3 * 3 and out["skipped"] == []
    assert any((home / "cache" / "features").rglob("*.npy"))
    for name in (ckpt.WEIGHTS_FILE, ckpt.SIDECAR_FILE, ckpt.LOG_FILE):
        assert (home / "models" / "crnn" / name).is_file()
    assert Embedder.load(home / "models" / "crnn").model_config.kind == "crnn"


@pytest.mark.parametrize("bad, message", [
    (["--model", "transformer"], "Invalid value for '--model'"),
    (["--epochs", "0"], "0 is not in the range x>=1"),
    (["--lr", "-1"], "Invalid value for '--lr'"),
])
def test_train_command_bad_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture, bad, message) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(_cli_args(tmp_path, tmp_path / "h", tmp_path / "c", *bad))
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_train_command_on_a_directory_without_a_dataset(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "nothing").mkdir()
    with pytest.raises(SystemExit) as exit_:
        main(_cli_args(tmp_path / "nothing", tmp_path / "h", tmp_path / "c"))
    assert exit_.value.code == 1
    assert capsys.readouterr().err.startswith("Error: ")


@pytest.mark.slow
def test_synthetic_singers_are_learned_across_albums(tmp_path: Path) -> None:
    """The product's synthetic corpus, voice in front (+20 dB): voices must carry to an unseen album."""
    root = tmp_path / "corpus"
    generate_corpus(root, CorpusSpec(singers=4, albums=6, songs_per_album=2, seconds=15.0, seed=3,
                                     audio_format="flac", voice_ratio_db=(20.0, 26.0)), workers=1)
    tracks = load_dataset(root).tracks
    cfg = TrainConfig(epochs=8, batch_size=16, lr=1e-3, patience=8, seed=0)
    result = _train(tracks, tmp_path / "m", tmp_path / "cache", cfg=cfg)
    assert result.val_block_accuracy >= 1 / 4 + 0.25, [r.val_accuracy for r in result.history]

"""MFCC-statistics + logistic-regression baseline on generated corpora."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from singerid.baseline import FEATURE_DIM, MfccLogReg, evaluate_baseline, song_features, track_features
from singerid.datasets import load_dataset
from singerid.datasets.synth import CorpusSpec, generate_corpus
from singerid.errors import AudioError, DatasetError, ParameterError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("base") / "corpus"
    generate_corpus(root, CorpusSpec(singers=3, albums=3, songs_per_album=2, seconds=3.0, seed=4))
    return root, list(load_dataset(root, seed=4).tracks)


def test_song_features_are_mfcc_statistics(tone):
    path = tone("a.wav", seconds=2.0, freq_hz=220.0)
    features = song_features(str(path))
    assert features.shape == (FEATURE_DIM,) == (80,) and features.dtype == np.float32
    assert np.all(np.isfinite(features))
    assert np.all(features[20:40] >= 0) and np.all(features[60:80] >= 0)  # the std halves
    higher = song_features(str(tone("b.wav", seconds=2.0, freq_hz=880.0)))
    assert not np.allclose(features, higher)


def test_song_features_of_a_missing_file_is_an_audio_error(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        song_features(str(tmp_path / "nope.mp3"))


def test_parallel_features_equal_serial_ones(tiny):
    _, tracks = tiny
    assert np.array_equal(track_features(tracks[:4], workers=2), track_features(tracks[:4], workers=1))


def test_evaluate_on_a_tiny_corpus(tiny):
    _, tracks = tiny
    result = evaluate_baseline(tracks, seed=0)
    test_songs = [t for t in tracks if t.split == "test"]
    assert 0.0 <= result.accuracy <= 1.0 and result.chance == pytest.approx(1 / 3)
    assert (result.n_train, result.n_test, result.n_singers) == (6, 6, 3)
    assert [p.song_id for p in result.predictions] == [t.song_id for t in test_songs]
    for p, t in zip(result.predictions, test_songs):
        assert p.singer == t.singer and p.predicted in {t.singer for t in tracks}
        assert 0.0 <= p.probability <= 1.0
    assert result.accuracy == pytest.approx(np.mean([p.correct for p in result.predictions]))
    assert json.loads(json.dumps(result.to_dict()))["n_test"] == 6


def test_model_fits_and_predicts_tracks(tiny):
    _, tracks = tiny
    train = [t for t in tracks if t.split == "train"]
    model = MfccLogReg(seed=0).fit(train)
    assert model.singers == tuple(sorted({t.singer for t in tracks}))
    on_train = model.predict(train)
    assert np.mean([p.correct for p in on_train]) >= 0.5  # it learnt something from its own songs


def test_misuse_is_reported(tiny):
    _, tracks = tiny
    with pytest.raises(ParameterError, match="MfccLogReg.predict called before fit"):
        MfccLogReg().predict(tracks[:1])
    one_singer = [t for t in tracks if t.singer == tracks[0].singer]
    with pytest.raises(DatasetError, match="needs songs of at least 2 singers"):
        MfccLogReg().fit(one_singer)
    with pytest.raises(DatasetError, match="no tracks in split 'test'"):
        evaluate_baseline([t for t in tracks if t.split != "test"])
    with pytest.raises(ParameterError, match="workers must be a positive integer, got 0"):
        track_features(tracks[:1], workers=0)


def test_corpus_baseline_script_writes_json(tiny, tmp_path):
    root, _ = tiny
    out = tmp_path / "b.json"
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "corpus_baseline.py"), str(root), "--seed", "4",
                           "--workers", "1", "--out", str(out)], capture_output=True, text=True, check=True)
    assert "mfcc-logreg song accuracy" in done.stdout and "chance" in done.stdout
    report = json.loads(out.read_text())
    assert report["split"].startswith("album 4/1/1") and report["level"] == "song" and report["seed"] == 4
    assert 0.0 <= report["accuracy"] <= 1.0 and len(report["predictions"]) == report["n_test"] == 6


@pytest.mark.slow
def test_baseline_is_above_chance_on_a_bigger_corpus(tmp_path):
    spec = CorpusSpec(singers=6, albums=6, songs_per_album=4, seconds=10.0, seed=3)
    generate_corpus(tmp_path / "c", spec, workers=2)
    result = evaluate_baseline(load_dataset(tmp_path / "c", seed=3).tracks, seed=3, workers=2)
    assert result.chance == pytest.approx(1 / 6)
    assert result.accuracy >= 2 * result.chance  # 24 test songs; chance would get 4

"""Calibration of the "unknown singer" threshold."""

from __future__ import annotations

import numpy as np
import pytest

from singerid.errors import ArtefactError
from singerid.pipeline.calibrate import calibrate, equal_error_threshold, load_calibration, save_calibration


def test_equal_error_threshold_on_a_hand_made_case():
    genuine = np.array([0.9, 0.8, 0.7, 0.6])
    impostor = np.array([0.65, 0.5, 0.4, 0.3])
    threshold, eer = equal_error_threshold(genuine, impostor)
    assert threshold == pytest.approx(0.65)  # rejects genuine 0.6 (1/4), accepts impostor 0.65 (1/4)
    assert eer == pytest.approx(0.25)
    threshold, eer = equal_error_threshold(np.array([0.9, 0.8]), np.array([0.2, 0.1]))
    assert 0.2 < threshold <= 0.8 and eer == 0.0


def _clustered(n_singers: int, songs: int, blocks: int, spread: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_singers, 32))
    vecs, song_codes, singer_codes = [], [], []
    for s in range(n_singers):
        for j in range(songs):
            v = centres[s] + spread * rng.standard_normal((blocks, 32))
            vecs.append(v)
            song_codes += [s * songs + j] * blocks
            singer_codes += [s] * blocks
    x = np.concatenate(vecs).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, np.array(song_codes), np.array(singer_codes)


def test_separable_singers_calibrate_to_no_errors(tmp_path):
    x, songs, singers = _clustered(6, 5, 10, spread=0.2)
    cal = calibrate(x, songs, singers, model_sha256="a" * 64)
    assert cal is not None and cal.equal_error_rate == 0.0
    assert cal.impostor_median < cal.min_similarity <= cal.genuine_median
    save_calibration(tmp_path, cal)
    assert load_calibration(tmp_path, "a" * 64) == cal
    with pytest.raises(ArtefactError, match="was made for another model"):
        load_calibration(tmp_path, "b" * 64)


def test_overlapping_singers_give_a_real_error_rate_and_too_little_data_none():
    x, songs, singers = _clustered(6, 5, 10, spread=3.0)
    cal = calibrate(x, songs, singers, model_sha256="a" * 64)
    assert cal is not None and 0.05 < cal.equal_error_rate <= 0.6
    x, songs, singers = _clustered(1, 5, 10, spread=0.2)
    assert calibrate(x, songs, singers, model_sha256="a" * 64) is None

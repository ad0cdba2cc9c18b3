"""The LDA + WCCN back end: it removes a nuisance direction, is exact to save, and refuses bad input."""

from __future__ import annotations

import numpy as np
import pytest

from singerid.errors import ArtefactError, ParameterError
from singerid.index.backend import Backend, fit_backend, identity_backend

D, N_SINGERS = 16, 8


def _album_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reference blocks from 4 albums per singer, query blocks from a 5th, unseen album.

    Singers differ a little along every direction; each album adds a large offset in 4
    nuisance directions (its accompaniment). Returns (ref, ref_labels, query, query_labels).
    """
    rng = np.random.default_rng(seed)
    singer_means = rng.standard_normal((N_SINGERS, D))
    nuisance = np.zeros((D, D))
    nuisance[:4, :4] = np.eye(4) * 6.0  # album offsets live in the first 4 coordinates, 6x the singer spread

    def blocks(albums_per_singer: int, per_album: int) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for singer in range(N_SINGERS):
            for _ in range(albums_per_singer):
                album = rng.standard_normal(D) @ nuisance
                xs.append(singer_means[singer] + album + 0.3 * rng.standard_normal((per_album, D)))
                ys.append(np.full(per_album, singer))
        return (np.concatenate(xs) + 5.0).astype(np.float32), np.concatenate(ys)  # + 5: a common offset

    ref, ref_labels = blocks(4, 25)
    query, query_labels = blocks(1, 25)
    return ref, ref_labels, query, query_labels


def _nn_accuracy(ref: np.ndarray, ref_labels: np.ndarray, query: np.ndarray, query_labels: np.ndarray) -> float:
    """Cosine nearest-neighbour singer accuracy of L2-normalised rows."""
    nearest = np.argmax(query @ ref.T, axis=1)
    return float(np.mean(ref_labels[nearest] == query_labels))


def test_lda_wccn_beats_plain_normalisation_on_an_album_split():
    ref, ref_labels, query, query_labels = _album_split()
    plain = identity_backend(D)
    backend = fit_backend(ref, ref_labels)
    before = _nn_accuracy(plain.apply(ref), ref_labels, plain.apply(query), query_labels)
    after = _nn_accuracy(backend.apply(ref), ref_labels, backend.apply(query), query_labels)
    assert backend.kind == "lda-wccn" and backend.dim_out == N_SINGERS - 1
    assert after > before + 0.3, (before, after)
    assert after > 0.9


def test_within_singer_scatter_is_white_after_the_transform():
    ref, ref_labels, _, _ = _album_split()
    backend = fit_backend(ref, ref_labels, shrinkage=0.0)
    y = (ref.astype(np.float64) - backend.mean) @ backend.transform.astype(np.float64)
    centred = y - np.stack([y[ref_labels == c].mean(0) for c in range(N_SINGERS)])[ref_labels]
    assert np.allclose(centred.T @ centred / len(y), np.eye(backend.dim_out), atol=1e-3)


def test_apply_is_deterministic_unit_norm_and_contiguous():
    ref, ref_labels, query, _ = _album_split()
    backend = fit_backend(ref, ref_labels, dim=4)
    out = backend.apply(query)
    assert out.dtype == np.float32 and out.shape == (len(query), 4) and out.flags.c_contiguous
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    assert np.array_equal(out, backend.apply(query))
    assert np.array_equal(backend.apply(query[:0]), np.zeros((0, 4), np.float32))


def test_none_is_l2_normalisation_only():
    ref, ref_labels, _, _ = _album_split()
    backend = fit_backend(ref, ref_labels, kind="none")
    assert backend.kind == "none" and backend.dim_out == D
    assert np.allclose(backend.apply(ref), ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=1e-6)


def test_save_load_round_trip_is_exact_and_pinned(tmp_path):
    ref, ref_labels, query, _ = _album_split()
    backend = fit_backend(ref, ref_labels)
    sha = backend.save(tmp_path / "backend.npz")
    assert sha == backend.sha256() and len(sha) == 64
    assert backend.save(tmp_path / "again.npz") == sha  # byte-identical files
    loaded = Backend.load(tmp_path / "backend.npz", sha256=sha)
    assert loaded.kind == backend.kind
    assert np.array_equal(loaded.mean, backend.mean) and np.array_equal(loaded.transform, backend.transform)
    assert np.array_equal(loaded.apply(query), backend.apply(query))
    with np.load(tmp_path / "backend.npz", allow_pickle=False) as npz:  # a plain .npz
        assert set(npz.files) == {"format_version", "kind", "mean", "transform"}
    with pytest.raises(ArtefactError, match="does not match the pinned"):
        Backend.load(tmp_path / "backend.npz", sha256="0" * 64)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ArtefactError, match="is not a back end file"):
        Backend.load(tmp_path / "junk.npz")
    with pytest.raises(ArtefactError, match="cannot read back end"):
        Backend.load(tmp_path / "missing.npz")


@pytest.mark.parametrize(("embeddings", "labels", "kwargs", "message"), [
    (np.ones((10, 4), np.float32), np.zeros(10, int), {}, "LDA needs at least 2 singers in the reference set, got 1"),
    (np.full((4, 4), np.nan, np.float32), np.array([0, 0, 1, 1]), {},
     r"embeddings contain 16 non-finite value\(s\) \(NaN or inf\)"),
    (np.ones((10, 4), np.float32), np.zeros(9, int), {}, r"labels must be integers of shape \(10,\)"),
    (np.ones(10, np.float32), np.zeros(10, int), {}, r"embeddings must be \(n, d\) with n >= 1, got shape \(10,\)"),
    (np.eye(4, dtype=np.float32), np.array([0, 1, 2, 3]), {}, "within-singer scatter is zero"),
    (np.random.default_rng(0).random((12, 4)).astype(np.float32), np.arange(12) % 3, {"dim": 3},
     r"LDA dim must be in \[1, 2\]"),
    (np.ones((10, 4), np.float32), np.arange(10) % 2, {"kind": "pca"}, "back end kind must be one of none, lda-wccn"),
])
def test_bad_input_raises_one_line_parameter_errors(embeddings, labels, kwargs, message):
    with pytest.raises(ParameterError, match=message) as info:
        fit_backend(embeddings, labels, **kwargs)
    assert "\n" not in str(info.value)


def test_apply_checks_the_dimension():
    with pytest.raises(ParameterError, match=r"embeddings must be \(n, 4\), got shape \(3, 5\)"):
        identity_backend(4).apply(np.ones((3, 5), np.float32))

"""Indexes past RAM: chunked building, on-disk inverted lists, shard-streamed rows, search-time knobs.

Real FAISS on small clustered data; the on-disk index is compared with the in-RAM index of the
same parameters, which it must answer identically (same trained quantiser, same codes).
"""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from singerid.errors import ArtefactError, ParameterError
from singerid.index import ondisk
from singerid.index.backend import fit_backend
from singerid.index.choice import IndexSpec, make_spec
from singerid.index.rows import ShardRows
from singerid.index.shards import ShardSet
from singerid.index.vectors import VectorIndex

D, K = 32, 11


pytestmark = pytest.mark.usefixtures("one_faiss_thread")  # other tests share the 2 cores


def unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, seed: int, n_clusters: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((n_clusters, D)))
    labels = rng.integers(0, n_clusters, n)
    return unit(centres[labels] + 0.35 * rng.standard_normal((n, D))), labels


X, LABELS = clustered(6000, 0)
IDS = np.arange(len(X), dtype=np.int64) * 5 + 7  # block ids are not positions
Q, _ = clustered(300, 1)


@pytest.mark.parametrize("index_type", ["flat", "flat-fp16", "ivf-flat", "ivf-pq"])
def test_chunked_build_equals_one_shot_build(index_type):
    spec = make_spec(index_type, dim=D, n_vectors=len(X))
    chunked = VectorIndex.build(spec, X, IDS, chunk_rows=777)  # uneven chunks, the last one short
    whole = VectorIndex.build(spec, X, IDS, chunk_rows=len(X))
    np.testing.assert_array_equal(chunked.ids(), np.sort(IDS))
    np.testing.assert_array_equal(chunked.ids(), whole.ids())
    a, b = chunked.search(Q, K), whole.search(Q, K)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])


def test_flat_chunked_build_reports_progress_and_answers_exactly():
    seen: list[int] = []
    index = VectorIndex.build(IndexSpec("flat", D), X, IDS, chunk_rows=1000, on_rows=seen.append)
    assert seen == [1000] * 6
    sims, found = index.search(Q, K)
    truth = np.argsort(-(Q.astype(np.float64) @ X.T.astype(np.float64)), axis=1, kind="stable")[:, :K]
    assert (found == IDS[truth]).mean() > 0.99  # float32 ties may swap places


def test_build_from_shards_equals_build_from_the_array(tmp_path):
    with ShardSet.open_writer(tmp_path, D, committed_rows={}, max_rows_per_shard=2500, durable=False) as shards:
        spans = [shards.append(X[i:i + 500]) for i in range(0, len(X), 500)]
    where = np.concatenate([np.full(s.n_rows, s.shard) for s in spans]), \
        np.concatenate([np.arange(s.first_row, s.first_row + s.n_rows) for s in spans])
    rows = ShardRows(ShardSet(tmp_path, D), *where)
    assert rows.shape == X.shape and len(rows) == len(X)
    np.testing.assert_array_equal(rows[100:1300], X[100:1300])
    np.testing.assert_array_equal(rows[np.array([5999, 0, 2500])], X[[5999, 0, 2500]])
    spec = make_spec("ivf-flat", dim=D, n_vectors=len(X))
    a = VectorIndex.build(spec, rows, IDS, chunk_rows=1000)
    b = VectorIndex.build(spec, X, IDS)
    np.testing.assert_array_equal(a.search(Q, K)[1], b.search(Q, K)[1])
    with pytest.raises(ParameterError, match="step 1"):
        rows[::2]


def test_back_end_fitted_in_chunks_equals_one_pass():
    raw = X * np.linspace(0.5, 2.0, D, dtype=np.float32)  # raw embeddings are not unit rows
    one = fit_backend(raw, LABELS)
    chunked = fit_backend(raw, LABELS, chunk_rows=1000)
    np.testing.assert_allclose(chunked.transform, one.transform, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(chunked.mean, one.mean, rtol=1e-6, atol=1e-7)
    assert fit_backend(raw, LABELS, chunk_rows=len(raw)).sha256() == one.sha256()  # one chunk: bit for bit


@pytest.mark.parametrize("index_type", ["ivf-flat", "ivf-pq"])
def test_on_disk_lists_answer_like_the_same_index_in_ram(tmp_path, index_type, capfd):
    ram_spec = make_spec(index_type, dim=D, n_vectors=len(X), nprobe=4)
    disk_spec = make_spec(index_type, dim=D, n_vectors=len(X), nprobe=4, on_disk=True)
    in_ram = VectorIndex.build(ram_spec, X, IDS)
    path = tmp_path / "blocks.faiss"
    built = VectorIndex.build(disk_spec, X, IDS, data_path=ondisk.data_path_for(path), part_rows=1500,
                              chunk_rows=700)  # 4 parts merged on disk
    built.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocks.faiss", "blocks.ivfdata"]  # parts removed
    assert path.stat().st_size < 40_000 < (tmp_path / "blocks.ivfdata").stat().st_size  # the lists moved out
    loaded = VectorIndex.load(path)
    assert loaded.spec == disk_spec and len(loaded) == len(X)
    for index in (built, loaded):
        a, b = in_ram.search(Q, K), index.search(Q, K)
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(loaded.ids(), np.sort(IDS))
    wide = in_ram.search(Q, K, nprobe=16)  # the per-call setting reaches the on-disk lists too
    np.testing.assert_array_equal(loaded.search(Q, K, nprobe=16)[1], wide[1])
    assert capfd.readouterr().out == ""  # FAISS's "resizing ..." printf()s do not reach stdout


def test_on_disk_add_and_remove_match_ram_and_never_touch_the_saved_file(tmp_path):
    spec = make_spec("ivf-flat", dim=D, n_vectors=len(X), nprobe=8, on_disk=True)
    first = tmp_path / "a.faiss"
    VectorIndex.build(spec, X[:5000], IDS[:5000], data_path=ondisk.data_path_for(first)).save(first)
    saved = (tmp_path / "a.ivfdata").read_bytes()
    in_ram = VectorIndex.build(make_spec("ivf-flat", dim=D, n_vectors=len(X), nprobe=8), X[:5000], IDS[:5000])
    index = VectorIndex.load(first)
    for changing in (in_ram, index):
        changing.add(X[5000:], IDS[5000:])
        assert changing.remove_ids(np.concatenate([IDS[:300], [10**9]])) == 300
    assert (tmp_path / "a.ivfdata").read_bytes() == saved  # the lists a manifest names stay intact
    np.testing.assert_array_equal(index.ids(), np.sort(IDS[300:]))
    np.testing.assert_array_equal(index.search(Q, K)[1], in_ram.search(Q, K)[1])
    second = tmp_path / "b.faiss"
    index.save(second)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # the scratch copy became b.ivfdata
    again = VectorIndex.load(second)
    np.testing.assert_array_equal(again.search(Q, K)[1], in_ram.search(Q, K)[1])
    with pytest.raises(ParameterError, match=r"id 1507 is already in the index"):
        again.add(X[300:301], IDS[300:301])


def test_on_disk_index_without_its_lists_is_an_artefact_error(tmp_path):
    spec = make_spec("ivf-flat", dim=D, n_vectors=len(X), on_disk=True)
    path = tmp_path / "a.faiss"
    VectorIndex.build(spec, X, IDS, data_path=ondisk.data_path_for(path)).save(path)
    (tmp_path / "a.ivfdata").unlink()
    with pytest.raises(ArtefactError, match=r"the inverted lists .*a\.ivfdata of index .*a\.faiss are missing"):
        VectorIndex.load(path)
    (tmp_path / "a.ivfdata").write_bytes(b"short")
    with pytest.raises(ArtefactError, match=r"a\.ivfdata have 5 bytes, index .* needs [\d,]+: the file is truncated"):
        VectorIndex.load(path)
    with pytest.raises(ParameterError, match="an on-disk index needs a data_path"):
        VectorIndex.build(spec, X, IDS)


def test_ivf_keeps_ids_in_its_lists_and_old_id_mapped_ivf_pq_files_still_load(tmp_path):
    spec = make_spec("ivf-pq", dim=D, n_vectors=len(X))
    index = VectorIndex.build(spec, X, IDS)
    assert isinstance(index._index, faiss.IndexIVFPQ)  # no id map: 8 bytes per vector less
    inner = faiss.index_factory(D, spec.factory_key, faiss.METRIC_INNER_PRODUCT)
    inner.do_polysemous_training = False
    old = faiss.IndexIDMap(inner)  # what build-index wrote before IVF kept the ids itself
    old.train(X)
    old.add_with_ids(X, IDS)
    faiss.write_index(old, str(tmp_path / "old.faiss"))
    loaded = VectorIndex.load(tmp_path / "old.faiss")
    assert loaded.spec.factory_key == spec.factory_key and not loaded.spec.on_disk
    np.testing.assert_array_equal(loaded.ids(), np.sort(IDS))
    assert loaded.remove_ids(IDS[:10]) == 10


def test_search_time_settings_apply_per_call():
    index = VectorIndex.build(make_spec("ivf-flat", dim=D, n_vectors=len(X), nprobe=1), X, IDS)
    narrow, wide = index.search(Q, K), index.search(Q, K, nprobe=10**6)  # capped at nlist: exhaustive
    exact = VectorIndex.build(IndexSpec("flat", D), X, IDS).search(Q, K)
    np.testing.assert_array_equal(wide[1], exact[1])
    assert (narrow[1] != exact[1]).any()
    np.testing.assert_array_equal(index.search(Q, K)[1], narrow[1])  # the index's own setting is untouched
    graph = VectorIndex.build(make_spec("hnsw", dim=D, n_vectors=len(X), ef_search=16), X, IDS)
    assert (graph.search(Q, K, ef_search=256)[1] == exact[1]).mean() > (graph.search(Q, K)[1] == exact[1]).mean()
    with pytest.raises(ParameterError, match="nprobe must be a positive integer, got 0"):
        index.search(Q, K, nprobe=0)


def test_sharded_exact_search_equals_one_faiss_call(monkeypatch):
    from singerid.index import vectors

    monkeypatch.setattr(vectors, "SHARD_MIN_ROWS", 1000)  # shard this small index too
    index = VectorIndex.build(IndexSpec("flat", D), X, IDS)
    with vectors.blas_threshold():
        plain = index._index.search(Q, K)  # FAISS's own threading
    faiss.omp_set_num_threads(3)  # three shards, uneven
    try:
        assert index._flat_shards() == 3
        sharded = index.search(Q, K)
    finally:
        faiss.omp_set_num_threads(1)
    np.testing.assert_array_equal(sharded[0], plain[0])  # the same similarities ...
    assert (sharded[1] == plain[1]).mean() > 0.999  # ... and neighbours, up to the order of exact ties
    small = index.search(Q[:5], K)  # fewer queries than the BLAS threshold: one FAISS call
    np.testing.assert_array_equal(small[1], plain[1][:5])

"""FAISS vector index: real FAISS against an exact numpy computation, add/remove, save/load."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from singerid.errors import ArtefactError, ParameterError
from singerid.index.choice import IndexSpec, make_spec
from singerid.index.files import sha256_file
from singerid.index.vectors import VectorIndex, exact_search

D = 32  # the real embedding size (GRU width)


pytestmark = pytest.mark.usefixtures("one_faiss_thread")  # other tests share the 2 cores


def unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def random_unit(n: int, seed: int, d: int = D) -> np.ndarray:
    return unit(np.random.default_rng(seed).standard_normal((n, d)))


def clustered(n: int, seed: int, n_clusters: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((n_clusters, D)))
    labels = rng.integers(0, n_clusters, n)
    return unit(centres[labels] + 0.35 * rng.standard_normal((n, D))), labels


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(found, truth)]))


def numpy_knn(queries: np.ndarray, database: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The plain full-matrix computation (small sizes only)."""
    sims = queries.astype(np.float64) @ database.astype(np.float64).T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), order


def test_flat_neighbours_equal_exact_numpy():
    x, q = random_unit(3000, 0), random_unit(200, 1)
    ids = np.arange(len(x), dtype=np.int64) * 7 + 3  # block ids are not positions
    index = VectorIndex.build(IndexSpec("flat", D), x, ids)
    sims, found = index.search(q, 11)
    ref_sims, ref_pos = numpy_knn(q, x, 11)
    np.testing.assert_allclose(sims, ref_sims, atol=1e-5)
    mismatch = found != ids[ref_pos]
    # FAISS works in float32: only neighbours tied within rounding may swap places
    assert mismatch.mean() < 0.01
    pos_of = {int(i): p for p, i in enumerate(ids)}
    for r, c in zip(*np.nonzero(mismatch)):
        assert abs(float(q[r] @ x[pos_of[int(found[r, c])]]) - ref_sims[r, c]) < 1e-5


def test_exact_search_matches_full_matrix_across_database_blocks():
    x, q = random_unit(1000, 2), random_unit(50, 3)
    sims, pos = exact_search(q, x, 11, query_batch=16, database_batch=97)  # many partial blocks to merge
    ref_sims, ref_pos = numpy_knn(q, x, 11)
    np.testing.assert_array_equal(pos, ref_pos)
    np.testing.assert_allclose(sims, ref_sims, rtol=0, atol=1e-6)
    ids = np.arange(1000) + 10_000
    _, mapped = exact_search(q, x, 11, ids=ids)
    np.testing.assert_array_equal(mapped, ids[ref_pos])


def test_exact_search_pads_with_minus_one_when_database_is_smaller_than_k():
    sims, pos = exact_search(random_unit(2, 4), random_unit(3, 5), 5)
    assert (pos[:, 3:] == -1).all() and np.isneginf(sims[:, 3:]).all()
    assert sorted(pos[0, :3]) == [0, 1, 2]


@pytest.mark.parametrize(("index_type", "floor"), [("flat-fp16", 0.99), ("hnsw", 0.95), ("ivf-flat", 0.95),
                                                    ("ivf-pq", 0.5)])
def test_approximate_types_recall_above_floor(index_type, floor):
    x, _ = clustered(4000, 6)
    q, _ = clustered(200, 7)
    spec = make_spec(index_type, dim=D, n_vectors=len(x))
    index = VectorIndex.build(spec, x, np.arange(len(x)))
    _, found = index.search(q, 11)
    _, truth = exact_search(q, x, 11)
    assert recall(found, truth) >= floor


def test_search_in_small_batches_equals_one_batch():
    x, q = random_unit(500, 8), random_unit(37, 9)
    index = VectorIndex.build(IndexSpec("flat", D), x, np.arange(500))
    a = index.search(q, 11, batch_size=5)
    b = index.search(q, 11, batch_size=1000)
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].dtype == np.float32 and a[1].dtype == np.int64 and a[1].shape == (37, 11)


def test_empty_index_returns_minus_one():
    index = VectorIndex.build(IndexSpec("flat", D), np.zeros((0, D), np.float32), np.zeros(0, np.int64))
    _, ids = index.search(random_unit(3, 10), 4)
    assert len(index) == 0 and (ids == -1).all()


def test_add_without_retraining_then_found():
    x, _ = clustered(4000, 11)
    index = VectorIndex.build(make_spec("ivf-pq", dim=D, n_vectors=4000), x, np.arange(4000))
    new = random_unit(20, 12)
    index.add(new, np.arange(100_000, 100_020))
    _, found = index.search(new, 1)
    assert len(index) == 4020
    assert (found[:, 0] >= 100_000).mean() >= 0.9  # PQ is lossy; the new vectors find themselves


def test_add_refuses_existing_ids_and_non_unit_vectors():
    index = VectorIndex.build(IndexSpec("flat", D), random_unit(10, 13), np.arange(10))
    with pytest.raises(ParameterError, match=r"id 3 is already in the index \(1 clashing ids\)"):
        index.add(random_unit(2, 14), np.array([3, 50]))
    with pytest.raises(ParameterError, match=r"row 1 has norm 2\.0000"):
        index.add(np.vstack([random_unit(1, 15), 2 * random_unit(1, 16)]), np.array([60, 61]))
    with pytest.raises(ParameterError, match=r"ids must be >= 0 .* got -5"):
        index.add(random_unit(1, 17), np.array([-5]))
    with pytest.raises(ParameterError, match=r"shape \(n, 32\), got \(2, 16\)"):
        index.add(random_unit(2, 18, d=16), np.array([70, 71]))
    assert len(index) == 10


@pytest.mark.parametrize("index_type", ["flat", "flat-fp16", "ivf-flat", "ivf-pq", "hnsw"])
def test_remove_ids_never_returned_again(index_type):
    x, _ = clustered(3000, 19)
    ids = np.arange(3000, dtype=np.int64) + 500
    index = VectorIndex.build(make_spec(index_type, dim=D, n_vectors=3000), x, ids)
    gone = ids[::3]
    assert index.remove_ids(np.concatenate([gone, [10**9]])) == len(gone)  # unknown ids are ignored
    assert len(index) == 3000 - len(gone)
    np.testing.assert_array_equal(index.ids(), np.setdiff1d(ids, gone))
    _, found = index.search(x[::3], 11)
    assert not np.isin(found, gone).any()


@pytest.mark.parametrize("index_type", ["flat", "flat-fp16", "ivf-flat", "ivf-pq", "hnsw"])
def test_save_load_round_trip(tmp_path, index_type):
    x, _ = clustered(3000, 20)
    spec = make_spec(index_type, dim=D, n_vectors=3000, nprobe=8, ef_search=32)
    index = VectorIndex.build(spec, x, np.arange(3000) * 2)
    path = tmp_path / "blocks.faiss"
    checksum = index.save(path)
    assert checksum == sha256_file(path)
    loaded = VectorIndex.load(path)
    assert loaded.spec == spec and len(loaded) == 3000
    q = x[:25]
    np.testing.assert_array_equal(loaded.search(q, 11)[1], index.search(q, 11)[1])
    assert [p.name for p in tmp_path.iterdir()] == ["blocks.faiss"]  # no temporary left


def test_failed_save_leaves_no_partial_file_and_keeps_the_old_one(tmp_path):
    index = VectorIndex.build(IndexSpec("flat", D), random_unit(50, 21), np.arange(50))
    target = tmp_path / "index.faiss"
    target.mkdir()  # os.replace onto a directory fails after the file was written
    with pytest.raises(ArtefactError, match="cannot write .*index.faiss"):
        index.save(target)
    assert [p.name for p in tmp_path.iterdir()] == ["index.faiss"] and target.is_dir()
    with pytest.raises(ArtefactError, match="cannot write"):
        index.save(tmp_path / "missing-dir" / "x.faiss")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.faiss"]


def test_load_refuses_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(ArtefactError, match="does not exist"):
        VectorIndex.load(tmp_path / "nope.faiss")
    corrupt = tmp_path / "corrupt.faiss"
    corrupt.write_bytes(b"not an index at all")
    with pytest.raises(ArtefactError, match="cannot read index file .*corrupt.faiss"):
        VectorIndex.load(corrupt)
    foreign = tmp_path / "l2.faiss"
    faiss.write_index(faiss.IndexFlatL2(D), str(foreign))
    with pytest.raises(ArtefactError, match="not an id-mapped inner-product index"):
        VectorIndex.load(foreign)


def test_ivf_pq_with_too_few_vectors_is_a_clear_error():
    spec = IndexSpec("ivf-pq", D, nlist=256, pq_m=16, pq_nbits=8, nprobe=8)
    with pytest.raises(ParameterError, match=r"IVF256,PQ16x8 needs at least 256 vectors to train, got 100"):
        VectorIndex.build(spec, random_unit(100, 22), np.arange(100))


def test_search_rejects_bad_k_and_queries():
    index = VectorIndex.build(IndexSpec("flat", D), random_unit(10, 23), np.arange(10))
    with pytest.raises(ParameterError, match="k must be a positive integer, got 0"):
        index.search(random_unit(1, 24), 0)
    with pytest.raises(ParameterError, match="queries row 0 is not finite"):
        index.search(np.full((1, D), np.nan, np.float32), 3)


GPU_READY = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


@pytest.mark.skipif(GPU_READY, reason="this machine has faiss-gpu and a GPU; see test_gpu_build_matches_cpu")
def test_gpu_without_a_usable_gpu_is_a_parameter_error():
    with pytest.raises(ParameterError, match=r"--gpu (needs faiss with GPU support|: faiss sees no CUDA GPU)"):
        VectorIndex.build(IndexSpec("flat", D), random_unit(10, 25), np.arange(10), gpu=True)


@pytest.mark.gpu
@pytest.mark.skipif(not GPU_READY, reason="needs faiss-gpu and a CUDA GPU")
@pytest.mark.parametrize("index_type", ["flat", "ivf-flat", "ivf-pq"])
def test_gpu_build_matches_cpu(tmp_path, index_type):
    x, _ = clustered(20_000, 26)
    spec = make_spec(index_type, dim=D, n_vectors=len(x))
    gpu_index = VectorIndex.build(spec, x, np.arange(len(x)), gpu=True)
    gpu_index.save(tmp_path / "gpu.faiss")
    loaded = VectorIndex.load(tmp_path / "gpu.faiss")  # saved in CPU form
    assert loaded.spec.index_type == index_type and len(loaded) == len(x)
    _, truth = exact_search(x[:100], x, 11)
    assert recall(loaded.search(x[:100], 11)[1], truth) >= (0.99 if index_type == "flat" else 0.5)

"""choose_index_key: one test per branch, plus the arithmetic it rests on (pure: no FAISS here)."""

from __future__ import annotations

import pytest

from singerid.config import IndexConfig
from singerid.errors import ParameterError
from singerid.index import choice
from singerid.index.choice import (
    FLAT_MAX_SCAN_FLOATS, IVF_PQ_MIN_VECTORS, IndexSpec, choose_index_key, choose_nlist, choose_pq_nbits,
    estimate_disk_bytes, estimate_index_bytes, make_spec, part_rows, spec_from_config, training_points,
)

D = 32
GB = 1024**3


def test_branch_flat_while_it_fits_and_is_fast_enough():
    assert choose_index_key(800_000, D, 8 * GB) == IndexSpec("flat", D)  # singer60's reference part
    n = FLAT_MAX_SCAN_FLOATS // D
    flat = estimate_index_bytes(IndexSpec("flat", D), n)
    assert choose_index_key(n, D, flat).index_type == "flat"  # both limits are inclusive
    assert choose_index_key(FLAT_MAX_SCAN_FLOATS // 128, 128, 8 * GB).index_type == "flat"


def test_branch_ivf_flat_when_exact_search_is_too_slow():
    n = FLAT_MAX_SCAN_FLOATS // D + 1
    spec = choose_index_key(n, D, 64 * GB)
    assert (spec.index_type, spec.on_disk, spec.nprobe) == ("ivf-flat", False, choice.DEFAULT_NPROBE)
    assert spec.nlist == choose_nlist(n) == 1024
    assert choose_index_key(FLAT_MAX_SCAN_FLOATS // 128 + 1, 128, 64 * GB).index_type == "ivf-flat"  # d counts


def test_branch_hnsw_only_inside_its_measured_band(monkeypatch):
    assert choice.HNSW_AUTO_MIN_VECTORS > choice.HNSW_AUTO_MAX_VECTORS  # measured: no size where it wins
    for n in (1_000, 1_000_000, 10_000_000, 100_000_000):
        assert choose_index_key(n, D, 1024 * GB).index_type != "hnsw"
    monkeypatch.setattr(choice, "HNSW_AUTO_MIN_VECTORS", 2_000_000)  # were a band measured ...
    monkeypatch.setattr(choice, "HNSW_AUTO_MAX_VECTORS", 5_000_000)
    n = 3_000_000
    hnsw = estimate_index_bytes(make_spec("hnsw", dim=D, n_vectors=n), n)
    spec = choose_index_key(n, D, hnsw)  # ... the graph comes before IVF inside it, when it fits
    assert (spec.index_type, spec.hnsw_m, spec.ef_search) == ("hnsw", choice.HNSW_M, choice.DEFAULT_EF_SEARCH)
    assert choose_index_key(n, D, hnsw - 1).index_type == "ivf-flat"
    assert choose_index_key(6_000_000, D, 1024 * GB).index_type == "ivf-flat"


def test_branch_ivf_pq_when_ivf_flat_does_not_fit():
    n = 10_000_000
    ivf_flat = estimate_index_bytes(make_spec("ivf-flat", dim=D, n_vectors=n), n)
    spec = choose_index_key(n, D, ivf_flat - 1)
    assert (spec.index_type, spec.on_disk) == ("ivf-pq", False)
    assert (spec.nlist, spec.pq_m, spec.pq_nbits, spec.factory_key) == (4096, 32, 8, "IVF4096,PQ32x8")
    small = estimate_index_bytes(IndexSpec("flat", D), 500_000) - 1  # exact search would be fast, but does not fit
    assert choose_index_key(500_000, D, small).index_type == "ivf-pq"


def test_branch_on_disk_when_nothing_fits_in_ram():
    n = 10_000_000
    in_ram = estimate_index_bytes(make_spec("ivf-pq", dim=D, n_vectors=n), n)
    spec = choose_index_key(n, D, in_ram - 1)
    assert (spec.index_type, spec.on_disk, spec.label) == ("ivf-pq", True, "ivf-pq (on disk)")
    resident = estimate_index_bytes(spec, n)
    assert resident == estimate_index_bytes(spec, 1) < 2**20  # centroids + codebooks + list directory only
    assert estimate_disk_bytes(spec, n) == n * (32 + 8)
    # too few vectors for 8-bit PQ codebooks: the exact vectors go on disk instead
    tiny = choose_index_key(58, D, 4096)
    assert (tiny.index_type, tiny.on_disk, tiny.nlist) == ("ivf-flat", True, 1)
    assert choose_index_key(IVF_PQ_MIN_VECTORS - 1, D, 100_000).index_type == "ivf-flat"


def test_branch_error_when_nothing_fits():
    with pytest.raises(ParameterError, match=r"memory budget 100 bytes is too small for 5,000 vectors of "
                                             r"dimension 32: the smallest suitable index needs about [\d,]+ bytes; "
                                             r"raise --memory-budget"):
        choose_index_key(5_000, D, 100)


def test_estimates_grow_with_vectors_and_match_the_formulas():
    n = 123_456
    assert estimate_index_bytes(IndexSpec("flat", D), n) == pytest.approx(n * (4 * D + 8) * 1.1, rel=1e-6)
    ivf = make_spec("ivf-flat", dim=D, n_vectors=n)
    assert estimate_index_bytes(ivf, n) == pytest.approx((n * (4 * D + 8) + 4 * D * ivf.nlist) * 1.1, rel=1e-6)
    for index_type in ("flat", "flat-fp16", "ivf-flat", "ivf-pq", "hnsw"):
        spec = make_spec(index_type, dim=D, n_vectors=n)
        assert estimate_index_bytes(spec, 2 * n) > estimate_index_bytes(spec, n)
        assert estimate_disk_bytes(spec, n) == 0
    pq = make_spec("ivf-pq", dim=D, n_vectors=n)
    assert estimate_index_bytes(pq, n) < estimate_index_bytes(IndexSpec("flat-fp16", D), n) / 1.5


def test_nlist_pq_bits_and_training_sample_follow_the_vector_count():
    assert choose_nlist(1_000_000) == 1024 and choose_nlist(10_000_000) == 4096
    assert choose_nlist(4_000) == 64  # sqrt rounds to 64 and 4000 / 39 allows 64
    assert choose_nlist(1_000) == 16  # capped so that every cell gets >= 39 training points
    assert choose_nlist(58) == 1
    assert choose_pq_nbits(1_000_000) == 8
    assert choose_pq_nbits(4_000) == 6  # 4000 / 39 = 102 points allow 2**6 centroids
    # FAISS's rule: 39-256 points per centroid; we take 64 per IVF cell (and per PQ centroid)
    assert training_points(make_spec("ivf-flat", dim=D, n_vectors=10**7), 10**7) == 64 * 4096
    assert training_points(make_spec("ivf-pq", dim=D, n_vectors=10**6), 10**6) == 64 * 1024
    assert training_points(make_spec("ivf-pq", dim=D, n_vectors=20_000), 20_000) == 64 * 256  # PQ needs more
    assert training_points(make_spec("ivf-flat", dim=D, n_vectors=500), 500) == 500  # all there is
    big = IndexSpec("ivf-flat", 1024, nlist=65_536, nprobe=8)  # the byte cap stops at 39 per cell
    assert training_points(big, 10**9) == 39 * 65_536
    assert training_points(IndexSpec("flat", D), 10**6) == 0


def test_part_rows_fill_the_budget_left_by_the_resident_part():
    spec = make_spec("ivf-pq", dim=D, n_vectors=10**8, on_disk=True)
    budget = 2 * GB
    rows = part_rows(spec, budget)
    assert rows == (budget - estimate_index_bytes(spec, 0)) // (2 * (32 + 8))
    assert part_rows(spec, 1) == choice.MIN_PART_ROWS


def test_spec_validation_quotes_the_bad_value():
    with pytest.raises(ParameterError, match=r"pq_m=5 must divide the dimension 32"):
        IndexSpec("ivf-pq", D, nlist=16, pq_m=5, pq_nbits=8, nprobe=4)
    with pytest.raises(ParameterError, match=r"index type must be one of .*, got 'ivf'"):
        IndexSpec("ivf", D)
    with pytest.raises(ParameterError, match=r"hnsw needs a positive integer hnsw_m, got None"):
        IndexSpec("hnsw", D)
    with pytest.raises(ParameterError, match=r"ivf-flat needs a positive integer nlist, got None"):
        IndexSpec("ivf-flat", D, nprobe=4)
    with pytest.raises(ParameterError, match=r"only ivf-flat and ivf-pq keep their lists on disk, not flat"):
        IndexSpec("flat", D, on_disk=True)


def test_spec_from_config_resolves_auto_and_keeps_overrides():
    auto = spec_from_config(IndexConfig(index_type="auto"), n_vectors=10_000, dim=D)
    assert auto.index_type == "flat"
    pq = spec_from_config(IndexConfig(index_type="ivf-pq", nlist=32, m=8, nprobe=4), n_vectors=50_000, dim=D)
    assert (pq.nlist, pq.pq_m, pq.nprobe, pq.factory_key) == (32, 8, 4, "IVF32,PQ8x8")
    assert IndexSpec.from_dict(pq.to_dict()) == pq
    disk = spec_from_config(IndexConfig(index_type="ivf-flat", on_disk=True), n_vectors=5_000, dim=D)
    assert (disk.factory_key, disk.on_disk, disk.nprobe) == ("IVF64,Flat", True, choice.DEFAULT_NPROBE)
    tight = spec_from_config(IndexConfig(index_type="auto", memory_budget_bytes=4096, nprobe=2), n_vectors=58, dim=D)
    assert (tight.label, tight.nprobe) == ("ivf-flat (on disk)", 1)  # nprobe <= nlist
    with pytest.raises(ParameterError, match=r"on-disk lists are for --type ivf-flat or ivf-pq"):
        spec_from_config(IndexConfig(index_type="auto", on_disk=True), n_vectors=58, dim=D)
    with pytest.raises(ParameterError, match=r"IndexConfig.nprobe must be a positive integer or None, got 0"):
        IndexConfig(nprobe=0)


def test_old_manifests_without_on_disk_still_parse():
    old = {"index_type": "ivf-pq", "dim": D, "nlist": 64, "pq_m": 16, "pq_nbits": 8, "nprobe": 16, "hnsw_m": None,
           "ef_construction": None, "ef_search": None}
    assert IndexSpec.from_dict(old).on_disk is False

"""choose_index_key: one test per branch, plus the arithmetic it rests on."""

from __future__ import annotations

import pytest

from singerid.config import IndexConfig
from singerid.errors import ParameterError
from singerid.index import choice
from singerid.index.choice import (
    FLAT_MAX_VECTORS, HNSW_MAX_VECTORS, IVF_MIN_VECTORS, IndexSpec, choose_index_key, choose_nlist,
    choose_pq_nbits, estimate_index_bytes, make_spec, spec_from_config,
)

D = 32
GB = 1024**3


def test_branch_flat_when_exact_fits():
    spec = choose_index_key(800_000, D, 8 * GB)  # singer60's reference part
    assert spec == IndexSpec("flat", D)


def test_branch_flat_fp16_when_only_half_precision_fits():
    n = 1_000_000
    flat = estimate_index_bytes(IndexSpec("flat", D), n)
    fp16 = estimate_index_bytes(IndexSpec("flat-fp16", D), n)
    assert fp16 < flat
    assert choose_index_key(n, D, flat).index_type == "flat"  # the budget is inclusive
    assert choose_index_key(n, D, flat - 1).index_type == "flat-fp16"
    assert choose_index_key(n, D, fp16).index_type == "flat-fp16"


def test_branch_hnsw_above_the_exact_limit():
    spec = choose_index_key(FLAT_MAX_VECTORS + 1, D, 64 * GB)
    assert spec.index_type == "hnsw" and spec.hnsw_m == choice.HNSW_M and spec.ef_search == 64


def test_branch_ivf_pq_when_the_graph_does_not_fit_or_is_too_large():
    n = 10_000_000
    hnsw = estimate_index_bytes(make_spec("hnsw", dim=D, n_vectors=n), n)
    spec = choose_index_key(n, D, hnsw - 1)
    assert spec.index_type == "ivf-pq"
    assert spec.nlist == 4096 and spec.pq_m == 16 and spec.pq_nbits == 8
    assert choose_index_key(HNSW_MAX_VECTORS + 1, D, 64 * GB).index_type == "ivf-pq"
    small_budget = estimate_index_bytes(IndexSpec("flat-fp16", D), 500_000) - 1  # exact types do not fit
    assert choose_index_key(500_000, D, small_budget).index_type == "ivf-pq"


def test_branch_error_when_nothing_fits():
    with pytest.raises(ParameterError, match=r"memory budget 1,000 bytes is too small for 5,000 vectors of "
                                             r"dimension 32: the smallest suitable index needs about [\d,]+ bytes"):
        choose_index_key(5_000, D, 1_000)
    assert IVF_MIN_VECTORS > 5_000  # so ivf-pq was not a candidate


def test_estimates_grow_with_vectors_and_match_the_flat_formula():
    n = 123_456
    assert estimate_index_bytes(IndexSpec("flat", D), n) == pytest.approx(n * (4 * D + 8) * 1.1, rel=1e-6)
    for index_type in ("flat", "flat-fp16", "ivf-pq", "hnsw"):
        spec = make_spec(index_type, dim=D, n_vectors=n)
        assert estimate_index_bytes(spec, 2 * n) > estimate_index_bytes(spec, n)
    pq = make_spec("ivf-pq", dim=D, n_vectors=n)
    assert estimate_index_bytes(pq, n) < estimate_index_bytes(IndexSpec("flat-fp16", D), n) / 1.5


def test_nlist_and_pq_bits_follow_the_vector_count():
    assert choose_nlist(1_000_000) == 1024
    assert choose_nlist(4_000) == 64  # sqrt rounds to 64 and 4000 / 39 allows 64
    assert choose_nlist(1_000) == 16  # capped so that every cell gets >= 39 training points
    assert choose_pq_nbits(1_000_000) == 8
    assert choose_pq_nbits(4_000) == 6  # 4000 / 39 = 102 points allow 2**6 centroids


def test_spec_validation_quotes_the_bad_value():
    with pytest.raises(ParameterError, match=r"pq_m=5 must divide the dimension 32"):
        IndexSpec("ivf-pq", D, nlist=16, pq_m=5, pq_nbits=8, nprobe=4)
    with pytest.raises(ParameterError, match=r"index type must be one of .*, got 'ivf'"):
        IndexSpec("ivf", D)
    with pytest.raises(ParameterError, match=r"hnsw needs a positive integer hnsw_m, got None"):
        IndexSpec("hnsw", D)


def test_spec_from_config_resolves_auto_and_keeps_overrides():
    auto = spec_from_config(IndexConfig(index_type="auto"), n_vectors=10_000, dim=D)
    assert auto.index_type == "flat"
    pq = spec_from_config(IndexConfig(index_type="ivf-pq", nlist=32, m=8, nprobe=4), n_vectors=50_000, dim=D)
    assert (pq.nlist, pq.pq_m, pq.nprobe, pq.factory_key) == (32, 8, 4, "IVF32,PQ8x8")
    assert IndexSpec.from_dict(pq.to_dict()) == pq

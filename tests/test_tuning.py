"""Search tuning of approximate indexes (singerid.index.tuning) and build-index's use of it.

Real FAISS on clustered synthetic block embeddings: singers are clusters, songs are sub-clusters,
so the KNN vote behaves as on a catalogue and too few IVF cells visited changes decisions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from singerid.cli import cli
from singerid.config import FeatureConfig, IndexConfig, ModelConfig
from singerid.embedder.checkpoint import ModelCard, save_model
from singerid.embedder.embed import Embedder
from singerid.embedder.model import build_model
from singerid.index import tuning
from singerid.index.choice import make_spec
from singerid.index.home import Home
from singerid.index.shards import ShardSet
from singerid.index.store_records import NewSong
from singerid.index.vectors import VectorIndex
from singerid.pipeline.build_index import build_index
from singerid.pipeline.common import open_store, record_model

SINGERS, SONGS_EACH, BLOCKS = 25, 10, 24  # 250 songs: 25 held out


pytestmark = pytest.mark.usefixtures("one_faiss_thread")  # other tests share the 2 cores


def unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def catalogue(d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors, song codes, singer codes): SINGERS x SONGS_EACH songs of BLOCKS blocks, overlapping singers."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((SINGERS, d)))
    singer_of_song = np.repeat(np.arange(SINGERS), SONGS_EACH)
    song_centres = unit(centres[singer_of_song] + 0.25 * rng.standard_normal((len(singer_of_song), d)))
    song_of_block = np.repeat(np.arange(len(singer_of_song)), BLOCKS)
    vectors = unit(song_centres[song_of_block] + 0.25 * rng.standard_normal((len(song_of_block), d)))
    return vectors, song_of_block, singer_of_song[song_of_block]


D = 32
X, SONG, SINGER = catalogue(D)
IDS = np.arange(len(X), dtype=np.int64) * 3 + 5  # block ids are not row positions


def ivf(nlist: int = 64, index_type: str = "ivf-flat") -> VectorIndex:
    return VectorIndex.build(make_spec(index_type, dim=D, n_vectors=len(X), nlist=nlist, nprobe=1), X, IDS)


@pytest.mark.parametrize("index_type", ["flat", "ivf-flat", "hnsw"])
def test_excluded_ids_are_never_answered(index_type):
    index = VectorIndex.build(make_spec(index_type, dim=D, n_vectors=len(X), nlist=16), X, IDS)
    excluded = IDS[SONG < 40]  # 40 whole songs
    sims, found = index.search(X[:200], 11, exclude_ids=excluded)  # the queries are excluded blocks themselves
    assert not np.isin(found, excluded).any()
    assert (found >= 0).all()
    plain = index.search(X[:200], 11)[1]
    assert np.isin(plain, excluded).any()  # without the selector they are found: the test can fail


def test_tuning_chooses_the_first_setting_that_agrees_and_it_is_stored_as_the_default():
    index = ivf()
    result = tuning.tune_search(index, X, IDS, SONG, SINGER)
    assert result is not None and result.knob == "nprobe"
    assert result.n_songs == 25 and result.n_queries == 25 * BLOCKS  # a tenth of 250 songs, every block (< 48)
    assert result.reached and result.stopped == "reached"
    assert result.chosen.song_agreement >= 0.99
    assert all(t.song_agreement < 0.99 for t in result.trials[:-1])  # the cheapest that reaches it
    assert [t.value for t in result.trials] == [1, 2, 4, 8, 16, 32, 64][:len(result.trials)]
    assert result.trials[0].song_agreement < 0.99  # one cell is not enough here: the sweep is real
    assert result.value > 1
    assert index.spec.nprobe == 1  # tune_search measures, the caller applies
    index.set_search_params(nprobe=result.value)
    assert index.spec.nprobe == result.value and "nprobe" in result.line()
    assert json.loads(json.dumps(result.to_dict()))["value"] == result.value


def test_every_cell_of_ivf_flat_is_exact_search():
    index = ivf(nlist=16)
    result = tuning.tune_search(index, X, IDS, SONG, SINGER, target=1.0)
    last = result.trials[-1]
    assert result.reached and last.value <= 16
    if last.value == 16:
        assert last.recall == pytest.approx(1.0) and last.block_agreement == 1.0


def test_unreachable_target_keeps_the_most_agreeing_setting_and_says_so():
    index = VectorIndex.build(make_spec("ivf-pq", dim=D, n_vectors=len(X), nlist=16, m=2, nprobe=1), X, IDS)
    result = tuning.tune_search(index, X, IDS, SONG, SINGER, target=1.0)
    assert not result.reached  # 2-byte codes lose too much: some held-out song is decided otherwise
    assert result.stopped in ("all settings tried", "recall stopped improving")
    if result.stopped == "recall stopped improving":
        assert result.trials[-1].recall - result.trials[-2].recall < tuning.MIN_RECALL_GAIN
    best = max(t.song_agreement for t in result.trials)
    assert result.chosen.song_agreement == best
    assert "below the target" in result.line() and "--type flat" in result.line()


def test_no_tuning_for_exact_indexes_or_too_few_songs():
    flat = VectorIndex.build(make_spec("flat", dim=D, n_vectors=len(X)), X, IDS)
    assert tuning.tune_search(flat, X, IDS, SONG, SINGER) is None
    few = SONG < 150  # 150 songs: 15 held out < MIN_SONGS
    small = VectorIndex.build(make_spec("ivf-flat", dim=D, n_vectors=int(few.sum()), nlist=8), X[few], IDS[few])
    assert tuning.tune_search(small, X[few], IDS[few], SONG[few], SINGER[few]) is None


# --- build-index on a home of synthetic vectors ----------------------------------------------------
@pytest.fixture(scope="module")
def vector_home(tmp_path_factory) -> Home:
    """A home whose store holds the catalogue above under an (untrained) Attention-CRNN's name."""
    home = Home(tmp_path_factory.mktemp("tuning_home")).create()
    singers = tuple(f"singer{i:02d}" for i in range(SINGERS))
    torch.manual_seed(0)
    cfg = ModelConfig(kind="attcrnn", n_classes=SINGERS, gru_units=D)
    save_model(home.model_dir("attcrnn"), build_model(cfg).state_dict(),
               ModelCard(model_config=cfg, feature_config=FeatureConfig(), singers=singers, weights_sha256=""))
    embedder = Embedder.load(home.model_dir("attcrnn"))
    assert embedder.embedding_dim == D
    record_model(home, home.read_manifest(missing_ok=True), embedder)
    offsets = np.arange(BLOCKS, dtype=np.float64)
    with open_store(home, None) as store, ShardSet.open_writer(home.shards_dir, D, committed_rows={},
                                                               durable=False) as shards:
        store.bind_embeddings(embedder.weights_sha256, embedder.feature_config)
        for song in range(SINGERS * SONGS_EACH):
            span = shards.append(X[SONG == song])
            singer = singers[SINGER[SONG == song][0]]
            store.add_song(NewSong(path=f"/ref/{singer}/{song:04d}.mp3",
                                   content_sha256=hashlib.sha256(str(song).encode()).hexdigest(), singer=singer,
                                   song_key=f"{singer}/{song:04d}", split="train", duration_seconds=float(BLOCKS),
                                   dataset="synthetic"),
                           offsets_seconds=offsets, shard=span.shard, first_row=span.first_row)
    return home


def test_build_index_tunes_nprobe_stores_it_and_query_default_is_it(vector_home):
    summary = build_index(vector_home, cfg=IndexConfig(index_type="ivf-flat", nlist=64, backend="none"))
    assert summary.tuning is not None and summary.tuning.reached
    assert summary.tuning.line() in summary.line()
    saved = VectorIndex.load(summary.path)
    assert saved.spec.nprobe == summary.tuning.value  # the file carries the tuned default
    assert vector_home.read_manifest().index.spec.nprobe == summary.tuning.value
    with open_store(vector_home, None) as store:
        record = store.index_history()[-1]
    assert record.params["search_tuning"]["value"] == summary.tuning.value


def test_explicit_nprobe_or_no_target_is_not_tuned(vector_home):
    fixed = build_index(vector_home, cfg=IndexConfig(index_type="ivf-flat", nlist=64, nprobe=3, backend="none"))
    assert fixed.tuning is None and VectorIndex.load(fixed.path).spec.nprobe == 3
    off = build_index(vector_home, cfg=IndexConfig(index_type="ivf-flat", nlist=64, search_agreement=None,
                                                   backend="none"))
    assert off.tuning is None


def test_cli_reports_the_tuning_in_text_and_json(vector_home):
    runner = CliRunner()
    text = runner.invoke(cli, ["build-index", "--home", str(vector_home.root), "--type", "hnsw", "--backend", "none"])
    assert text.exit_code == 0, text.output
    assert "search tuned: ef " in text.output and "held-out songs" in text.output
    assert "tuning: ef 16: " in text.output  # a progress line per setting tried (stderr)
    out = runner.invoke(cli, ["build-index", "--home", str(vector_home.root), "--type", "ivf-flat", "--nlist", "64",
                              "--backend", "none", "--search-agreement", "0.9", "--json"])
    assert out.exit_code == 0, out.output
    tuned = json.loads(out.stdout)["search_tuning"]
    assert tuned["knob"] == "nprobe" and tuned["target"] == 0.9 and tuned["reached"]
    bad = runner.invoke(cli, ["build-index", "--home", str(vector_home.root), "--type", "ivf-flat",
                              "--search-agreement", "1.5"])
    assert bad.exit_code == 2


def test_the_line_says_when_exact_search_was_faster():
    trial = tuning.Trial(value=64, song_agreement=1.0, block_agreement=0.99, recall=0.99, seconds=2.0)
    faster_exact = tuning.SearchTuning(knob="nprobe", value=64, target=0.99, reached=True, n_songs=100,
                                       n_queries=4800, exact_seconds=1.0, trials=(trial,), stopped="reached")
    assert faster_exact.slower_than_exact and "--type flat would be exact and quicker" in faster_exact.line()
    slower_exact = dataclasses.replace(faster_exact, exact_seconds=3.0)
    assert not slower_exact.slower_than_exact and "quicker" not in slower_exact.line()


def test_auto_builds_flat_when_the_tuned_index_searches_more_slowly_than_exact(vector_home, monkeypatch):
    from singerid.index import choice

    monkeypatch.setattr(choice, "FLAT_MAX_SCAN_FLOATS", 1000)  # so that auto chooses ivf-flat for 6,000 vectors
    cfg = IndexConfig(index_type="auto", nlist=64, backend="none")
    monkeypatch.setattr(tuning.SearchTuning, "slower_than_exact", property(lambda self: False))
    kept = build_index(vector_home, cfg=cfg)
    assert (kept.index_type, kept.exact_instead) == ("ivf-flat", False)
    monkeypatch.setattr(tuning.SearchTuning, "slower_than_exact", property(lambda self: True))
    swapped = build_index(vector_home, cfg=cfg)
    assert (swapped.index_type, swapped.exact_instead) == ("flat", True)
    assert swapped.tuning is not None and "the exact one was built" in swapped.line()
    assert VectorIndex.load(swapped.path).spec.index_type == "flat"
    assert vector_home.read_manifest().index.spec.index_type == "flat"
    assert not any(p.suffix == ".ivfdata" for p in vector_home.index_dir.iterdir())
    small = build_index(vector_home, cfg=dataclasses.replace(cfg, memory_budget_bytes=700_000))  # flat does not fit
    assert small.index_type != "flat" and not small.exact_instead

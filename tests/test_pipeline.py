"""The vector database end to end: train -> embed-corpus -> build-index -> query / enrol / remove / info."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from embed_corpus import make_tracks, write_song

from singerid.cli import cli
from singerid.config import FeatureConfig, IndexConfig, ModelConfig, TrainConfig
from singerid.embedder.train import train_embedder
from singerid.errors import ArtefactError, DatasetError, ParameterError
from singerid.index.home import Home
from singerid.index.shards import ShardSet
from singerid.index.vectors import exact_search
from singerid.pipeline.build_index import build_index
from singerid.pipeline.embed_corpus import embed_tracks
from singerid.pipeline.manage import enrol, info, remove
from singerid.pipeline.query import QueryEngine, QueryOptions

N_SINGERS = 4
TRAIN = TrainConfig(epochs=5, batch_size=8, lr=3e-3, patience=5, seed=0)  # ours: enough for the easy corpus


pytestmark = pytest.mark.usefixtures("one_torch_thread_module")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """4 singers x (3 train + 1 val + 2 test) songs x 5 s of an easy generated voice corpus."""
    root = tmp_path_factory.mktemp("pipeline_corpus")
    return root, make_tracks(root, singers=N_SINGERS, train_songs=3, val_songs=1, test_songs=2, seconds=5.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus):
    """A home with a trained attcrnn model, the training split embedded and a flat index built."""
    _, tracks = corpus
    home = Home(tmp_path_factory.mktemp("home")).create()
    train_embedder(tracks, feature_cfg=FeatureConfig(), model_cfg=ModelConfig(kind="attcrnn"), train_cfg=TRAIN,
                   out_dir=home.model_dir("attcrnn"), cache_dir=home.root / "cache")
    summary = embed_tracks(home, [t for t in tracks if t.split == "train"])
    assert (summary.n_added, summary.n_failed, summary.n_blocks) == (N_SINGERS * 3, 0, N_SINGERS * 3 * 4)
    build_index(home)
    return home


def copy_home(home: Home, dest: Path) -> Home:
    shutil.copytree(home.root, dest)
    return Home(dest)


def test_query_names_the_singer_of_most_test_songs_with_evidence_from_that_singer(trained, corpus):
    _, tracks = corpus
    tests = [t for t in tracks if t.split == "test"]
    train_paths = {str(t.path.absolute()) for t in tracks if t.split == "train"}
    with QueryEngine.open(trained) as engine:
        decisions = [engine.identify(t.path) for t in tests]
    correct = sum(d.singer == t.singer for d, t in zip(decisions, tests))
    assert correct >= len(tests) - 2, [(t.singer, d.singer, d.vote_share) for t, d in zip(tests, decisions)]
    for d in decisions:
        assert d.n_blocks == 4 and 0 < d.vote_share <= 1
        assert d.evidence, "a KNN decision comes with evidence"
        assert all(e.singer == d.singer for e in d.evidence)
        assert all(e.path in train_paths for e in d.evidence)
        assert d.evidence[0].n_matches >= d.evidence[-1].n_matches
        assert set(d.timings) >= {"audio", "embed", "search", "vote", "metadata", "total"}


def test_index_neighbours_equal_exact_search_over_the_stored_embeddings(trained, corpus):
    _, tracks = corpus
    with QueryEngine.open(trained) as engine:
        queries = np.concatenate([engine.embedder.embed(_blocks(t.path)) for t in tracks if t.split == "test"])
        labels, sims = engine.neighbour_labels(queries, 11)
        with engine.store as store:
            loc = store.block_locations()
        database = ShardSet(trained.shards_dir, engine.embedder.embedding_dim).gather(loc.shards, loc.rows)
        exact_sims, exact_ids = exact_search(queries, database, 11, ids=loc.ids)
        np.testing.assert_allclose(sims, exact_sims, atol=1e-5)
        np.testing.assert_array_equal(labels, engine.labels.singers_of(exact_ids))


def test_softmax_method_uses_the_classifier_head(trained, corpus):
    _, tracks = corpus
    test = next(t for t in tracks if t.split == "test")
    with QueryEngine.open(trained) as engine:
        d = engine.identify(test.path, QueryOptions(method="softmax"))
    assert d.method == "softmax" and d.evidence == () and d.singer in engine.embedder.singers


def test_unknown_answer_below_the_thresholds(trained, corpus):
    _, tracks = corpus
    test = next(t for t in tracks if t.split == "test")
    with QueryEngine.open(trained) as engine:
        sure = engine.identify(test.path)
        doubtful = engine.identify(test.path, QueryOptions(min_similarity=0.9999999))
    assert sure.singer != "unknown"
    assert doubtful.singer == "unknown" and doubtful.predicted == sure.singer


def test_reject_unknown_applies_the_threshold_calibrated_by_build_index(trained, tmp_path):
    from singerid.pipeline.calibrate import load_calibration

    stranger = write_song(tmp_path / "stranger.wav", singer=5, song_seed=4242, seconds=5.0)
    with QueryEngine.open(trained) as engine:
        threshold = load_calibration(trained.root, engine.embedder.weights_sha256).min_similarity
        plain = engine.identify(stranger)
        checked = engine.identify(stranger, QueryOptions(reject_unknown=True))
    assert checked.predicted == plain.singer
    assert (checked.singer == "unknown") == (plain.mean_similarity < threshold)


def test_rerun_adds_nothing(trained, corpus, tmp_path):
    _, tracks = corpus
    home = copy_home(trained, tmp_path / "h")
    again = embed_tracks(home, [t for t in tracks if t.split == "train"])
    assert (again.n_added, again.n_skipped, again.n_blocks) == (0, N_SINGERS * 3, 0)
    assert info(home, check=True)["problems"] == []


def test_bad_files_are_recorded_and_the_run_goes_on(trained, corpus, tmp_path):
    _, tracks = corpus
    home = copy_home(trained, tmp_path / "h")
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\x00" * 5000)
    test = [t for t in tracks if t.split == "test"]
    from dataclasses import replace

    summary = embed_tracks(home, [replace(test[0], path=bad), *test])
    assert (summary.n_added, summary.n_failed) == (len(test), 1)
    assert summary.failures[0][0] == str(bad) and "not a readable audio file" in summary.failures[0][1]
    assert info(home)["failures"] == 1


def test_enrol_a_new_singer_then_remove_them(trained, tmp_path):
    home = copy_home(trained, tmp_path / "h")
    songs = [write_song(tmp_path / f"new{i}.wav", singer=4, song_seed=900 + i, seconds=5.0) for i in range(4)]
    probe = write_song(tmp_path / "probe.wav", singer=4, song_seed=999, seconds=5.0)
    before = info(home)["n_blocks"]
    summary = enrol(home, "Newcomer", songs[:3])
    assert (summary.n_songs, summary.n_blocks, summary.index_vectors) == (3, 12, before + 12)
    with QueryEngine.open(home) as engine:
        assert engine.identify(probe).singer == "Newcomer"
    state = info(home, check=True)
    assert state["problems"] == []
    assert {s["name"]: s["kind"] for s in state["singers"]}["Newcomer"] == "enrolled"

    removed = remove(home, singer="Newcomer")
    assert (removed.n_songs, removed.n_blocks, removed.index_vectors) == (3, 12, before)
    with QueryEngine.open(home) as engine:
        assert engine.identify(probe).singer != "Newcomer"
    assert info(home, check=True)["problems"] == []
    with pytest.raises(DatasetError, match=r"^no singer named 'Newcomer' in the store \(known: singer0, "):
        remove(home, singer="Newcomer")


def test_mismatched_model_or_missing_index_is_refused_with_the_repair(trained, tmp_path):
    home = copy_home(trained, tmp_path / "h")
    manifest = json.loads(home.manifest_path.read_text())
    index_file = home.index_dir / manifest["index"]["file"]
    index_file.unlink()
    with pytest.raises(ArtefactError, match=r"is missing; run `singerid build-index --home "):
        QueryEngine.open(home)
    build_index(home)
    manifest = json.loads(home.manifest_path.read_text())
    manifest["model"]["sha256"] = "0" * 64
    home.manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtefactError, match="^the home's vectors were made by model 000000000000, but "):
        QueryEngine.open(home)
    assert info(home, check=True)["problems"]


def test_killed_embed_run_resumes_without_duplicates(trained, tmp_path):
    """SIGKILL embed-corpus mid-run, rerun it: every song once, every block once, store = shards = index."""
    root = tmp_path / "many"
    for s in range(N_SINGERS):
        for i in range(8):
            write_song(root / f"singer{s}" / f"song{i}.wav", singer=s, song_seed=5000 + 10 * s + i, seconds=6.0)
    home = Home(tmp_path / "h").create()
    shutil.copytree(trained.model_dir("attcrnn"), home.model_dir("attcrnn"))
    cmd = [sys.executable, "-m", "singerid", "embed-corpus", str(root), "--home", str(home.root),
           "--dataset", "folder", "--split", "all"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _stored_songs(home) < 3:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    killed_at = _stored_songs(home)
    assert 3 <= killed_at < 32, f"the kill should land mid-run (stored {killed_at} of 32 songs)"
    result = subprocess.run(cmd + ["--json"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["added"] + report["skipped"] == 32 and report["skipped"] == killed_at
    with sqlite3.connect(home.db_path) as db:
        assert db.execute("select count(*) from songs").fetchone()[0] == 32
        assert db.execute("select count(*), count(distinct id) from blocks").fetchone() == (32 * 5, 32 * 5)
        assert db.execute("select count(*) from (select shard, row from blocks group by shard, row)").fetchone()[0] == 160
    rows = sum(ShardSet(home.shards_dir, 32).rows_on_disk(s) for s in ShardSet(home.shards_dir, 32).shard_ids())
    assert rows == 160
    build_index(home)
    assert info(home, check=True)["problems"] == []


def test_cli_chain_with_json_and_a_bad_song(trained, corpus, tmp_path):
    _, tracks = corpus
    home = copy_home(trained, tmp_path / "h")
    runner = CliRunner()
    test = next(t for t in tracks if t.split == "test")
    out = runner.invoke(cli, ["query", str(test.path), str(tmp_path / "missing.wav"), "--home", str(home.root), "--json"])
    assert out.exit_code == 1
    rows = json.loads(out.stdout)
    assert set(rows[0]) >= {"song", "singer", "vote_share", "runners_up", "evidence"}
    assert rows[1] == {"song": str(tmp_path / "missing.wav"), "ok": False, "error_kind": "AudioError",
                       "error": f"{tmp_path / 'missing.wav'}: no such file"}
    out = runner.invoke(cli, ["info", "--home", str(home.root), "--json", "--check"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert (data["n_singers"], data["n_songs"], data["n_blocks"]) == (N_SINGERS, N_SINGERS * 3, N_SINGERS * 12)
    out = runner.invoke(cli, ["build-index", "--home", str(home.root), "--type", "hnsw", "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout)["type"] == "hnsw"
    out = runner.invoke(cli, ["query", str(test.path), "--home", str(home.root), "--k", "0"])
    assert out.exit_code == 2


def test_commands_on_an_empty_home_name_the_next_steps_in_order_and_create_nothing(tmp_path, capsys):
    from singerid.cli import main

    home = tmp_path / "empty"
    steps = (f"run `singerid train DATA --home {home}`, then `singerid embed-corpus DATA --home {home}`, "
             f"then `singerid build-index --home {home}`")
    for args, expected in ((["build-index"], f"nothing is embedded in {home} yet; {steps}"),
                           (["query", "x.wav"], f"{home}/manifest.json does not exist; {steps}"),
                           (["info", "--check"], None)):
        with pytest.raises(SystemExit) as exit_info:
            main([*args, "--home", str(home)])
        out = capsys.readouterr()
        if expected is None:  # info: an empty home is not inconsistent, it says what to run
            assert exit_info.value.code == 0 and f"not ready for queries yet: {steps}" in out.out
            continue
        assert exit_info.value.code == 1
        assert out.err == f"Error: {expected}\n"
    assert not home.exists()


@pytest.mark.gpu
@pytest.mark.skipif(not hasattr(__import__("faiss"), "StandardGpuResources") or __import__("faiss").get_num_gpus() == 0,
                    reason="needs faiss-gpu and a CUDA GPU")
def test_build_index_on_the_gpu_gives_the_same_neighbours(trained, tmp_path):
    home = copy_home(trained, tmp_path / "h")
    build_index(home, cfg=IndexConfig(gpu=True))
    assert info(home, check=True)["problems"] == []


def test_gpu_without_a_gpu_is_a_clear_error(trained, tmp_path):
    import faiss

    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        pytest.skip("a GPU is present: the error path cannot be reached")
    home = copy_home(trained, tmp_path / "h")
    with pytest.raises(ParameterError, match="GPU"):
        build_index(home, cfg=IndexConfig(gpu=True))


def _blocks(path: Path) -> np.ndarray:
    from singerid.audio import song_blocks

    return song_blocks(path, FeatureConfig()).blocks


def _stored_songs(home: Home) -> int:
    if not home.db_path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{home.db_path}?mode=ro", uri=True, timeout=0.1) as db:
            return db.execute("select count(*) from songs").fetchone()[0]
    except sqlite3.OperationalError:
        return 0

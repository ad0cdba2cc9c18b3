"""Metadata store on a real SQLite file. tests/test_postgres.py reruns the backend-neutral tests
(everything taking ``store_url``) against a real PostgreSQL server."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import create_engine, event, inspect, text, update
from sqlalchemy.orm import Session

from singerid.config import FeatureConfig
from singerid.errors import ArtefactError, ParameterError
from singerid.index.schema import SCHEMA_VERSION, StoreInfo
from singerid.index.store import MetadataStore
from singerid.index.store_records import IndexBuildRecord, NewSong


@pytest.fixture
def store_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'meta.sqlite'}"


@pytest.fixture
def store(store_url):
    with MetadataStore(store_url) as opened:
        yield opened


def sha(text_: str) -> str:
    return hashlib.sha256(text_.encode()).hexdigest()


def song(singer: str, n: int, *, split: str = "train", kind: str = "trained", album: str | None = "A1") -> NewSong:
    return NewSong(path=f"/corpus/{singer}/{album}/{n:02d}.mp3", content_sha256=sha(f"{singer}/{n}"), singer=singer,
                   song_key=f"{singer}/{album}/{n:02d}", split=split, duration_seconds=12.5, dataset="artist20",
                   album=album, singer_kind=kind)


class Rows:
    """Next free shard row, as the shard writer would hand them out."""

    def __init__(self) -> None:
        self.next = 0

    def add(self, store: MetadataStore, new: NewSong, n_blocks: int) -> np.ndarray:
        ids = store.add_song(new, offsets_seconds=np.arange(n_blocks) * 1.024, shard=0, first_row=self.next)
        self.next += n_blocks
        return ids


def fill(store: MetadataStore) -> Rows:
    """3 singers x 3 songs (2 train, 1 test) of 10 blocks."""
    rows = Rows()
    for singer in ("alice", "bob", "carol"):
        for n in range(3):
            rows.add(store, song(singer, n, split="test" if n == 2 else "train"), 10)
    return rows


def test_schema_creation_is_idempotent(store_url):
    with MetadataStore(store_url) as first:
        fill(first)
    with MetadataStore(store_url) as again, MetadataStore(store_url) as third:
        assert again.n_blocks() == third.n_blocks() == 90
    tables = set(inspect(create_engine(store_url)).get_table_names())
    assert {"singers", "songs", "blocks", "indexes", "failed_files", "store_info"} <= tables


def test_schema_version_mismatch_is_refused(store_url):
    MetadataStore(store_url).close()
    engine = create_engine(store_url)
    with Session(engine) as s, s.begin():
        s.execute(update(StoreInfo).values(schema_version=SCHEMA_VERSION + 98))
    engine.dispose()
    with pytest.raises(ArtefactError, match=rf"has schema version {SCHEMA_VERSION + 98}, this singerid needs "
                                            rf"{SCHEMA_VERSION}; embed the corpus into a new home"):
        MetadataStore(store_url)


def test_song_and_its_blocks_are_stored_together(store):
    ids = store.add_song(song("alice", 0), offsets_seconds=np.array([0.0, 1.024, 2.048]), shard=2, first_row=40)
    assert ids.dtype == np.int64 and ids.tolist() == [0, 1, 2]
    record = store.find_song(sha("alice/0"))
    assert (record.singer, record.split, record.n_blocks, record.status) == ("alice", "train", 3, "embedded")
    locations = store.block_locations()
    assert locations.ids.tolist() == [0, 1, 2] and locations.shards.tolist() == [2, 2, 2]
    assert locations.rows.tolist() == [40, 41, 42]
    assert store.shard_row_counts() == {2: 43}
    info = store.lookup_blocks(np.array([2]))[2]
    assert (info.singer, info.song_key, info.album, info.offset_seconds) == ("alice", "alice/A1/00", "A1", 2.048)


def test_a_failed_insert_rolls_back_song_singer_and_ids(store):
    store.add_song(song("alice", 0), offsets_seconds=np.arange(10.0), shard=0, first_row=0)
    with pytest.raises(ArtefactError, match=r"store rejected song '/corpus/bob/A1/00.mp3'"):
        # rows 5.. of shard 0 already belong to alice: the unique (shard, row) constraint fires
        store.add_song(song("bob", 0), offsets_seconds=np.arange(10.0), shard=0, first_row=5)
    assert store.find_song(sha("bob/0")) is None
    assert store.n_blocks() == 10 and store.counts().n_singers == 1  # bob was not left behind
    ids = store.add_song(song("bob", 0), offsets_seconds=np.arange(2.0), shard=0, first_row=10)
    assert ids.tolist() == [10, 11]  # the id counter was rolled back too


def test_rerun_skips_songs_already_stored_by_content_hash(store):
    store.add_song(song("alice", 0), offsets_seconds=np.arange(3.0), shard=0, first_row=0)
    assert store.find_song(sha("alice/0")) is not None
    assert store.find_song(sha("never stored")) is None
    with pytest.raises(ArtefactError, match="store rejected song"):
        store.add_song(song("alice", 0), offsets_seconds=np.arange(3.0), shard=0, first_row=3)
    assert store.n_blocks() == 3


def test_bad_song_values_are_parameter_errors(store):
    with pytest.raises(ParameterError, match=r"split must be one of train, val, test, got 'dev'"):
        NewSong("/x.mp3", sha("x"), "alice", "x", "dev", 1.0)
    with pytest.raises(ParameterError, match=r"content_sha256 must be 64 lowercase hex digits, got 'abc'"):
        NewSong("/x.mp3", "abc", "alice", "x", "train", 1.0)
    with pytest.raises(ParameterError, match=r"singer name must have 1 to 255 characters, got 300"):
        NewSong("/x.mp3", sha("x"), "a" * 300, "x", "train", 1.0)
    with pytest.raises(ParameterError, match=r"offsets_seconds must be a finite 1-D array"):
        store.add_song(song("alice", 0), offsets_seconds=np.array([0.0, np.nan]), shard=0, first_row=0)


def test_failures_are_recorded_and_the_run_goes_on(store):
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    store.record_failure("/corpus/bad.mp3", "AudioError: cannot decode\n  at frame 3")
    store.add_song(song("alice", 0), offsets_seconds=np.arange(2.0), shard=0, first_row=0)
    store.record_failure("/corpus/short.wav", "0.4 s is shorter than one block", stage="features")
    failures = store.failures()
    assert [(f.path, f.stage, f.error) for f in failures] == [
        ("/corpus/bad.mp3", "embed", "AudioError: cannot decode at frame 3"),
        ("/corpus/short.wav", "features", "0.4 s is shorter than one block")]
    assert len(store.failures(since=before)) == 2
    assert store.n_blocks() == 2


def test_removing_a_singer_cascades_to_songs_and_blocks(store):
    fill(store)
    removed = store.remove_singer("bob")
    assert len(removed) == 30 and store.n_blocks() == 60
    assert store.lookup_blocks(removed) == {}
    assert [c.name for c in store.counts().singers] == ["alice", "carol"]
    assert {r.singer for r in store.songs()} == {"alice", "carol"}
    with pytest.raises(ParameterError, match=r"no singer named 'dave' in the store \(known: alice, carol\)"):
        store.remove_singer("dave")


def test_removing_songs_drops_singers_left_without_songs(store):
    store.add_song(song("eve", 0, kind="enrolled"), offsets_seconds=np.arange(4.0), shard=0, first_row=0)
    store.add_song(song("eve", 1, kind="enrolled"), offsets_seconds=np.arange(4.0), shard=0, first_row=4)
    assert store.remove_songs(["/corpus/eve/A1/00.mp3"]).tolist() == [0, 1, 2, 3]
    assert store.counts().n_singers == 1
    assert store.remove_songs(["/corpus/eve/A1/01.mp3"]).tolist() == [4, 5, 6, 7]
    assert store.counts().n_singers == 0 and store.n_blocks() == 0
    with pytest.raises(ParameterError, match=r"no song with path '/nowhere.mp3' in the store"):
        store.remove_songs(["/nowhere.mp3"])


def test_block_ids_are_never_reused_after_deletes(store):
    rows = Rows()
    first = rows.add(store, song("alice", 0), 5)
    store.remove_singer("alice")
    second = rows.add(store, song("alice", 1), 5)
    assert second.min() > first.max()
    assert store.block_ids().tolist() == second.tolist()


def test_lookup_takes_one_query_per_batch(store):
    fill(store)
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *args: statements.append(statement))
    neighbours = np.tile(np.arange(90), (11, 1))  # (11, 90): every id many times, plus no-result ids
    neighbours[0, :5] = -1
    found = store.lookup_blocks(neighbours)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1 and len(found) == 90
    assert {found[i].singer for i in range(30)} == {"alice"}


def test_counts_per_singer_and_split_and_block_labels(store):
    fill(store)
    store.add_song(song("eve", 0, kind="enrolled"), offsets_seconds=np.arange(4.0), shard=1, first_row=0)
    counts = store.counts()
    assert (counts.n_singers, counts.n_songs, counts.n_blocks) == (4, 10, 94)
    alice = counts.singers[0]
    assert (alice.name, alice.kind, alice.n_songs, alice.n_blocks) == ("alice", "trained", 3, 30)
    assert alice.per_split == (("test", 1, 10), ("train", 2, 20))
    assert counts.singers[3].kind == "enrolled"
    assert counts.to_dict()["singers"][0]["splits"]["train"] == {"n_songs": 2, "n_blocks": 20}
    assert store.n_blocks(splits=["train"]) == 64 and len(store.block_ids(splits=["test"])) == 30
    labels = store.block_labels(splits=["train", "val"])
    assert labels.singers == ("alice", "bob", "carol", "eve") and len(labels.ids) == 64
    codes = labels.singers_of(np.array([[0, 35], [-1, 10**6]]))
    assert codes.tolist() == [[0, 1], [-1, -1]]
    assert store.shard_row_counts() == {0: 90, 1: 4}


def test_singer_kind_is_kept_and_conflicts_are_refused(store):
    store.add_song(song("alice", 0), offsets_seconds=np.arange(2.0), shard=0, first_row=0)
    with pytest.raises(ParameterError, match=r"singer 'alice' is already in the store as a trained singer, "
                                             r"not enrolled"):
        store.add_song(song("alice", 1, kind="enrolled"), offsets_seconds=np.arange(2.0), shard=0, first_row=2)


def test_embeddings_are_bound_to_one_model(store):
    assert store.embedding_source() == (None, None)
    store.bind_embeddings("a" * 64, FeatureConfig())
    store.bind_embeddings("a" * 64, FeatureConfig())  # same model again: fine
    assert store.embedding_source() == ("a" * 64, FeatureConfig())
    with pytest.raises(ArtefactError, match=r"holds embeddings of model aaaaaaaaaaaa, not bbbbbbbbbbbb"):
        store.bind_embeddings("b" * 64, FeatureConfig())
    with pytest.raises(ArtefactError, match="another feature config"):
        store.bind_embeddings("a" * 64, FeatureConfig(silence_db=-60.0))


def test_index_builds_are_recorded(store):
    record = IndexBuildRecord("flat", {"index_type": "flat", "dim": 32}, 90, 32, "c" * 64, "blocks.faiss",
                              "d" * 64, "e" * 64)
    store.record_index(record)
    (back,) = store.index_history()
    assert back.params == record.params and back.file_sha256 == "d" * 64 and back.created_at is not None


def test_bulk_insert_is_fast_enough_for_a_real_corpus(store):
    rows = Rows()
    start = time.perf_counter()
    for n in range(40):
        rows.add(store, song(f"s{n % 8}", n), 240)  # 40 four-minute songs = 9,600 blocks
    elapsed = time.perf_counter() - start
    assert store.n_blocks() == 9_600
    assert elapsed < 5.0, f"{elapsed:.2f} s for 9,600 blocks"  # ~0.1 s here; 1M blocks in minutes, not hours


# --- SQLite only --------------------------------------------------------------------------

def test_sqlite_runs_in_wal_mode_with_foreign_keys(store):
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_unusable_urls_are_clear_errors(tmp_path):
    with pytest.raises(ParameterError, match=r"cannot use database URL 'nosuchdb://x'"):
        MetadataStore("nosuchdb://x")
    with pytest.raises(ArtefactError, match=r"cannot open metadata store sqlite:///.*/missing/meta.sqlite"):
        MetadataStore(f"sqlite:///{tmp_path / 'missing' / 'meta.sqlite'}")


def test_a_failure_is_one_row_per_file_updated_on_each_attempt(store):
    for attempt in range(3):
        store.record_failure("/corpus/bad.wav", f"bad.wav: attempt {attempt}", size_bytes=10, mtime_ns=5)
    (only,) = store.failures()
    assert (only.path, only.error, only.n_failures, only.size_bytes) == ("/corpus/bad.wav", "bad.wav: attempt 2", 3, 10)
    assert store.failed_before("/corpus/bad.wav", size_bytes=10, mtime_ns=5) is not None
    assert store.failed_before("/corpus/bad.wav", size_bytes=11, mtime_ns=5) is None  # the file changed
    store.clear_failure("/corpus/bad.wav")
    assert store.failures() == []


def test_a_version_1_store_is_upgraded_in_place_keeping_one_failure_per_file(tmp_path):
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = create_engine(url)
    with engine.begin() as conn:  # the v1 layout: one failures row per attempt
        conn.execute(text("CREATE TABLE store_info (id INTEGER PRIMARY KEY, schema_version INTEGER, "
                          "next_block_id BIGINT, model_sha256 VARCHAR(64), feature_config_json TEXT, "
                          "created_at DATETIME)"))
        conn.execute(text("INSERT INTO store_info VALUES (1, 1, 0, NULL, NULL, '2024-01-01 00:00:00')"))
        conn.execute(text("CREATE TABLE failures (id INTEGER PRIMARY KEY, path TEXT, stage VARCHAR(32), "
                          "error TEXT, created_at DATETIME)"))
        for i, path in enumerate(["/a.wav", "/b.wav", "/a.wav", "/a.wav"]):
            conn.execute(text("INSERT INTO failures (path, stage, error, created_at) VALUES (:p, 'embed', :e, "
                              ":t)"), {"p": path, "e": f"error {i}", "t": f"2024-01-0{i + 1} 00:00:00"})
    engine.dispose()
    with MetadataStore(url) as upgraded:
        got = {(f.path, f.error, f.n_failures) for f in upgraded.failures()}
        assert got == {("/a.wav", "error 3", 3), ("/b.wav", "error 1", 1)}
    assert "failures" not in set(inspect(create_engine(url)).get_table_names())
    with MetadataStore(url) as again:  # opening again is a no-op
        assert len(again.failures()) == 2

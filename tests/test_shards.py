"""Embedding shards with the real metadata store: append, gather, and repair after crashes."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from singerid.errors import ArtefactError, ParameterError
from singerid.index.shards import HEADER, ShardSet, shard_path
from singerid.index.store import MetadataStore
from singerid.index.store_records import NewSong

D = 8


def rows_for(song: int, n: int) -> np.ndarray:
    """Recognisable rows: row j of song i starts with i * 1000 + j."""
    out = np.full((n, D), 0.5, dtype=np.float32)
    out[:, 0] = song * 1000 + np.arange(n)
    return out


def new_song(i: int) -> NewSong:
    return NewSong(path=f"/c/{i}.wav", content_sha256=hashlib.sha256(str(i).encode()).hexdigest(), singer=f"s{i % 3}",
                   song_key=str(i), split="train", duration_seconds=float(i))


def store_song(store: MetadataStore, shards: ShardSet, i: int, n: int) -> np.ndarray:
    """The embed-corpus order: append to the shard first, then commit the song and its block rows."""
    span = shards.append(rows_for(i, n))
    return store.add_song(new_song(i), offsets_seconds=np.arange(n, dtype=float), shard=span.shard,
                          first_row=span.first_row)


def assert_store_matches_shards(store: MetadataStore, shards: ShardSet) -> None:
    """Every stored block reads back its own row; no shard holds rows the store does not know."""
    locations = store.block_locations()
    vectors = shards.gather(locations.shards, locations.rows)
    info = store.lookup_blocks(locations.ids)
    expected = [int(info[int(i)].song_key) * 1000 + int(info[int(i)].offset_seconds) for i in locations.ids]
    np.testing.assert_array_equal(vectors[:, 0], expected)
    assert len(np.unique(locations.ids)) == len(locations)
    committed = store.shard_row_counts()
    for shard in shards.shard_ids():
        assert shards.rows_on_disk(shard) == committed.get(shard, 0)


@pytest.fixture
def store(tmp_path):
    with MetadataStore(f"sqlite:///{tmp_path / 'meta.sqlite'}") as opened:
        yield opened


def test_append_and_gather_round_trip(tmp_path, store):
    with ShardSet.open_writer(tmp_path / "shards", D, committed_rows=store.shard_row_counts()) as shards:
        for i, n in enumerate([5, 3, 7]):
            store_song(store, shards, i, n)
        assert_store_matches_shards(store, shards)
    reader = ShardSet(tmp_path / "shards", D)
    picked = reader.gather(np.array([0, 0]), np.array([14, 5]))
    assert picked[:, 0].tolist() == [2006.0, 1000.0] and picked.dtype == np.float32


def test_songs_are_never_split_across_shards(tmp_path, store):
    with ShardSet.open_writer(tmp_path, D, committed_rows={}, max_rows_per_shard=10) as shards:
        spans = [shards.append(rows_for(i, n)) for i, n in enumerate([6, 4, 3, 25, 1])]
    assert [(s.shard, s.first_row, s.n_rows) for s in spans] == [(0, 0, 6), (0, 6, 4), (1, 0, 3), (2, 0, 25), (3, 0, 1)]


def test_uncommitted_and_half_written_rows_are_truncated_on_reopen(tmp_path, store):
    directory = tmp_path / "shards"
    with ShardSet.open_writer(directory, D, committed_rows=store.shard_row_counts()) as shards:
        store_song(store, shards, 0, 6)
        shards.append(rows_for(1, 4))  # crash 1: rows appended, the process died before the commit
    with open(shard_path(directory, 0), "ab") as fh:
        fh.write(rows_for(2, 1).tobytes()[:13])  # crash 2: killed in the middle of writing a row
    assert shard_path(directory, 0).stat().st_size == HEADER.size + 10 * 4 * D + 13
    with ShardSet.open_writer(directory, D, committed_rows=store.shard_row_counts()) as shards:
        assert shards.repaired == {0: 4}  # the whole rows of song 1; the half row is cut as well
        assert shard_path(directory, 0).stat().st_size == HEADER.size + 6 * 4 * D
        ids = store_song(store, shards, 1, 4)  # the rerun stores song 1 again, right after song 0
        assert_store_matches_shards(store, shards)
    assert store.block_locations().rows[-4:].tolist() == [6, 7, 8, 9] and len(ids) == 4


def test_repair_reports_the_rows_it_dropped(tmp_path, store):
    with ShardSet.open_writer(tmp_path, D, committed_rows={}) as shards:
        shards.append(rows_for(0, 3))
    with ShardSet.open_writer(tmp_path, D, committed_rows={}) as shards:
        assert shards.repaired == {0: 3} and shards.rows_on_disk(0) == 0
        assert shards.repair({}) == {}  # nothing left to drop the second time


def test_shards_shorter_than_the_store_are_refused(tmp_path, store):
    with ShardSet.open_writer(tmp_path, D, committed_rows={}) as shards:
        store_song(store, shards, 0, 5)
    os.truncate(shard_path(tmp_path, 0), HEADER.size + 2 * 4 * D)
    with pytest.raises(ArtefactError, match=r"shard 0 has 2 rows but the store references 5"):
        ShardSet.open_writer(tmp_path, D, committed_rows=store.shard_row_counts())
    shard_path(tmp_path, 0).unlink()
    with pytest.raises(ArtefactError, match=r"the store references shard 0 but .*shard-000000.f32 is missing"):
        ShardSet.open_writer(tmp_path, D, committed_rows=store.shard_row_counts())
    with pytest.raises(ArtefactError, match=r"shard 0 has 0 rows, the store asks for row 4"):
        shards = ShardSet(tmp_path, D)
        shard_path(tmp_path, 0).write_bytes(HEADER.pack(b"SIDSHRD1", 1, D))
        shards.gather(np.array([0]), np.array([4]))


def test_one_writer_at_a_time(tmp_path):
    with ShardSet.open_writer(tmp_path, D, committed_rows={}):
        with pytest.raises(ArtefactError, match="another singerid process is writing to"):
            ShardSet.open_writer(tmp_path, D, committed_rows={})
    ShardSet.open_writer(tmp_path, D, committed_rows={}).close()  # released on close


def test_readers_cannot_append_and_dimensions_must_match(tmp_path):
    with ShardSet.open_writer(tmp_path, D, committed_rows={}) as shards:
        shards.append(rows_for(0, 2))
        with pytest.raises(ParameterError, match=r"shard rows must have shape \(n, 8\), got \(2, 4\)"):
            shards.append(np.zeros((2, 4), np.float32))
    with pytest.raises(ParameterError, match="opened read-only"):
        ShardSet(tmp_path, D).append(rows_for(1, 1))
    with pytest.raises(ArtefactError, match=r"holds 8-d vectors but the model makes 16-d ones"):
        ShardSet(tmp_path, 16).gather(np.array([0]), np.array([0]))


WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    sys.path.insert(0, sys.argv[3])
    from test_shards import new_song, store_song
    from singerid.index.shards import ShardSet
    from singerid.index.store import MetadataStore
    store = MetadataStore(sys.argv[1])
    shards = ShardSet.open_writer(sys.argv[2], 8, committed_rows=store.shard_row_counts(), max_rows_per_shard=200)
    for i in range(10_000):
        if store.find_song(new_song(i).content_sha256) is None:   # a rerun skips stored songs
            store_song(store, shards, i, 7 + i % 5)
        print(i, flush=True)
""")


def test_a_killed_writer_leaves_a_repairable_state(tmp_path):
    """SIGKILL the embed loop at random moments, rerun it, and find no duplicated or missing block."""
    url, directory = f"sqlite:///{tmp_path / 'meta.sqlite'}", tmp_path / "shards"
    rng = np.random.default_rng(0)
    for _ in range(3):
        child = subprocess.Popen([sys.executable, "-c", WRITER, url, str(directory), str(Path(__file__).parent)],
                                 stdout=subprocess.PIPE, text=True)
        for _ in range(20):  # wait until it is in its stride
            assert child.stdout.readline(), "writer died"
        time.sleep(float(rng.uniform(0.0, 0.05)))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    with MetadataStore(url) as store:
        songs = store.songs()
        assert len(songs) >= 20 and len({s.content_sha256 for s in songs}) == len(songs)
        assert sorted(int(s.song_key) for s in songs) == list(range(len(songs)))  # no song missing in between
        with ShardSet.open_writer(directory, D, committed_rows=store.shard_row_counts()) as shards:
            assert_store_matches_shards(store, shards)
            assert sum(s.n_blocks for s in songs) == store.n_blocks()

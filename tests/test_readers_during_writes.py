"""Readers keep working during writes: queries answer from the last consistent snapshot.

A query answers from the manifest's index and only the store rows it holds; writers add songs to
the store first and swap the index last (atomically, keeping the previous generation), so a
query never refuses because a writer is adding songs, and no build-index is needed after
embed-corpus or enrol. build-index takes the writer lock; leftovers of killed writers go at the
next write.
"""

from __future__ import annotations

import pytest
from embed_corpus import write_song
from reliability import QueryLoop, home_facts, run_crashing, singerid_cmd

from singerid.errors import ArtefactError
from singerid.index.shards import writer_lock
from singerid.pipeline.build_index import build_index
from singerid.pipeline.manage import enrol, info
from singerid.pipeline.query import QueryEngine


@pytest.fixture
def home(ready_home, tmp_path):
    return ready_home.copy(tmp_path / "h")


def expected_answers(ready_home, home):
    """The fixture's test songs it answers correctly (the loop checks they stay answered so)."""
    songs = ready_home.songs("test")
    with QueryEngine.open(home) as engine:
        right = [s for s in songs if engine.identify(s).singer == ready_home.singer_of(s)]
    assert len(right) >= len(songs) // 2
    return right, {s: ready_home.singer_of(s) for s in right}


def test_queries_answer_throughout_an_embed_corpus_and_see_its_songs_without_build_index(ready_home, home, tmp_path):
    data = tmp_path / "more"
    for s in range(4):  # a second album of the four singers, as embed-corpus --dataset folder reads them
        for i in range(3):  # 3 songs each: the split rule needs 3
            write_song(data / f"singer{s}" / f"extra{i}.wav", singer=s, song_seed=7000 + 10 * s + i, seconds=5.0)
    songs, expected = expected_answers(ready_home, home)
    before = home.read_manifest().index.n_vectors
    with QueryLoop(home, songs, expected) as loop:
        code = run_crashing(singerid_cmd("embed-corpus", str(data), "--home", str(home.root), "--dataset",
                                         "folder", "--split", "all"), None)
    assert code == 0
    assert (loop.refused, loop.wrong) == (0, 0), loop.errors[:3]
    assert loop.answered > 0
    facts = home_facts(home)
    assert facts["index_equals_store"] and home.read_manifest().index.n_vectors == facts["blocks"] > before
    checked = info(home, check=True)
    assert (checked["problems"], checked["pending_blocks"]) == ([], 0)


def test_a_reader_keeps_its_snapshot_while_the_index_is_swapped(ready_home, home, tmp_path):
    voice = [write_song(tmp_path / "v" / f"{i}.wav", singer=5, song_seed=9100 + i, seconds=5.0) for i in range(2)]
    old = home.read_manifest().index
    with QueryEngine.open(home) as engine:
        enrol(home, "Newcomer", voice)
        assert home.read_manifest().index.file != old.file
        assert home.index_path(old).is_file()  # the previous generation stays for readers that opened it
        assert engine.identify(voice[0]).singer != "Newcomer"  # the snapshot it opened
    with QueryEngine.open(home) as engine:
        assert engine.identify(voice[0]).predicted == "Newcomer"  # the new snapshot, no build-index
    build_index(home)
    assert not home.index_path(old).exists()  # two generations back: deleted


def test_build_index_takes_the_writer_lock(home):
    with writer_lock(home.shards_dir):
        with pytest.raises(ArtefactError, match="another singerid process is writing to"):
            build_index(home)
    build_index(home)


def test_leftovers_of_killed_writers_are_cleaned_by_the_next_write(home):
    strays = [home.index_dir / ".blocks-flat-x.faiss.tmp-4242", home.root / ".manifest.json.tmp-4242",
              home.index_dir / "scratch.tmp-99.ivfdata", home.shards_dir / "shard-000009.f32.tmp"]
    for path in strays:
        path.write_bytes(b"partial")
    build_index(home)
    assert [p for p in strays if p.exists()] == []


def test_a_killed_build_leaves_the_previous_index_answering(ready_home, home):
    songs, expected = expected_answers(ready_home, home)
    code = run_crashing(singerid_cmd("build-index", "--home", str(home.root)), 4)  # after the new file is written
    assert code == -9
    with QueryLoop(home, songs, expected) as loop:
        build_index(home)
    assert (loop.refused, loop.wrong) == (0, 0), loop.errors[:3]
    assert home_facts(home)["leftovers"] == [] and info(home, check=True)["problems"] == []


def test_remove_swaps_the_index_before_deleting_rows(ready_home, home):
    """Stopped between its index swap and its delete (what remove does first), the home answers and
    checks clean; the rerun finishes."""
    from singerid.index.store import MetadataStore
    from singerid.pipeline.index_sync import sync_index
    from singerid.pipeline.manage import _ids_to_remove, remove

    victim = ready_home.singer_of(ready_home.songs("train")[0])
    with MetadataStore(home.db_url()) as store, writer_lock(home.shards_dir):
        sync_index(home, store, drop_ids=_ids_to_remove(store, victim, []))
    with QueryEngine.open(home) as engine:  # the index no longer holds the singer; the store still does
        assert victim not in {engine.labels.singers[c] for c in set(engine.labels.singer_codes.tolist())}
    checked = info(home, check=True)
    assert checked["problems"] == [] and checked["pending_blocks"] > 0
    remove(home, singer=victim)
    assert home_facts(home)["index_equals_store"] and info(home, check=True)["pending_blocks"] == 0

"""The index parts used together the way singerid.pipeline combines them (no embedder here:
block embeddings are clustered unit vectors, one cluster per singer)."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest

from singerid.config import FeatureConfig, IndexConfig
from singerid.index.choice import spec_from_config
from singerid.index.consistency import VectorsState, find_problems
from singerid.index.files import ids_sha256
from singerid.index.home import Home, IndexEntry, Manifest, ModelEntry
from singerid.index.shards import ShardSet
from singerid.index.store import MetadataStore
from singerid.index.store_records import IndexBuildRecord, NewSong
from singerid.index.vectors import VectorIndex

D, MODEL, K = 32, "9" * 64, 11
CENTRES = np.linalg.qr(np.random.default_rng(0).standard_normal((D, D)))[0][:6].astype(np.float32)  # orthogonal


pytestmark = pytest.mark.usefixtures("one_faiss_thread")  # other tests share the 2 cores


def blocks_of(singer: int, song: int, n: int = 30) -> np.ndarray:
    rng = np.random.default_rng(1000 * singer + song)
    x = CENTRES[singer] + 0.15 * rng.standard_normal((n, D)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def store_song(store: MetadataStore, shards: ShardSet, singer: int, song: int, kind: str = "trained") -> np.ndarray:
    vectors = blocks_of(singer, song)
    span = shards.append(vectors)  # 1. shard first ...
    new = NewSong(f"/c/s{singer}/{song}.mp3", hashlib.sha256(f"{singer}/{song}".encode()).hexdigest(), f"s{singer}",
                  f"s{singer}/{song}", "train", 30.7, singer_kind=kind)
    return store.add_song(new, offsets_seconds=np.arange(len(vectors)) * 1.024, shard=span.shard,
                          first_row=span.first_row)  # 2. ... then one transaction


def predict(index: VectorIndex, store: MetadataStore, vectors: np.ndarray) -> str:
    _, ids = index.search(vectors, K)
    info = store.lookup_blocks(ids)  # one query for the whole song
    block_votes = [Counter(info[int(i)].singer for i in row if i >= 0).most_common(1)[0][0] for row in ids]
    return Counter(block_votes).most_common(1)[0][0]


def publish(home: Home, store: MetadataStore, index: VectorIndex) -> Manifest:
    path = home.new_index_path(index.spec.index_type)
    checksum = index.save(path)
    entry = IndexEntry(path.name, checksum, path.stat().st_size, index.spec, len(index), MODEL, FeatureConfig(),
                       ids_sha256(index.ids()))
    manifest = home.write_manifest(Manifest(ModelEntry("attcrnn", MODEL, D), FeatureConfig(), entry))
    home.prune_index_files(manifest)
    store.record_index(IndexBuildRecord(entry.spec.index_type, entry.spec.to_dict(), entry.n_vectors, D, MODEL,
                                        entry.file, checksum, entry.ids_sha256))
    return manifest


def problems(home: Home, store: MetadataStore, index: VectorIndex) -> list[str]:
    return find_problems(home, home.read_manifest(), verify_checksum=True, model_sha256=MODEL,
                         feature_config=FeatureConfig(),
                         store=VectorsState(store.n_blocks(), ids_sha256(store.block_ids()), MODEL, FeatureConfig()),
                         index=VectorsState(len(index), ids_sha256(index.ids())))


def test_embed_build_query_enrol_remove(tmp_path):
    home = Home(tmp_path / "home").create()
    with MetadataStore(home.db_url()) as store:
        store.bind_embeddings(MODEL, FeatureConfig())
        with ShardSet.open_writer(home.shards_dir, D, committed_rows=store.shard_row_counts()) as shards:
            for singer in range(4):
                for song in range(3):
                    store_song(store, shards, singer, song)

            # build-index from the shards, in id order
            locations = store.block_locations()
            spec = spec_from_config(IndexConfig(index_type="auto"), n_vectors=len(locations), dim=D)
            index = VectorIndex.build(spec, shards.gather(locations.shards, locations.rows), locations.ids)
            publish(home, store, index)
            assert problems(home, store, index) == []
            assert predict(index, store, blocks_of(2, 99)) == "s2"

            # enrol a new singer without retraining: store + index, then the manifest
            new_ids = np.concatenate([store_song(store, shards, 5, song, kind="enrolled") for song in range(2)])
            assert any("the store has 420 vectors" in p for p in problems(home, store, index))
            index.add(shards.gather(*_locations_of(store, new_ids)), new_ids)
            publish(home, store, index)
            assert problems(home, store, index) == []
            assert predict(index, store, blocks_of(5, 99)) == "s5"
            assert [c.kind for c in store.counts().singers] == ["trained"] * 4 + ["enrolled"]

        # remove them again from both
        removed = store.remove_singer("s5")
        assert index.remove_ids(removed) == len(removed) == 60
        publish(home, store, index)
        assert problems(home, store, index) == []
        assert predict(index, store, blocks_of(5, 99)) != "s5"
        assert len(list(home.index_dir.iterdir())) == 1 and len(store.index_history()) == 3


def _locations_of(store: MetadataStore, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    locations = store.block_locations()
    rows = np.searchsorted(locations.ids, ids)
    return locations.shards[rows], locations.rows[rows]


def _cli(*args: str) -> tuple[int, str, str]:
    """``singerid ARGS`` through the real entry point: (exit code, stdout, stderr)."""
    import contextlib
    import io

    from singerid.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code, out.getvalue(), err.getvalue()


def test_build_index_auto_with_a_tiny_budget_goes_on_disk_and_answers_like_exact(ready_home, tmp_path):
    import json

    import singerid

    home = ready_home.copy(tmp_path / "h")
    songs = ready_home.songs("test")
    with singerid.open(home.root) as sid:  # the fixture's exact (flat) index
        exact = [r.singer for r in sid.identify_many(songs, evidence=0)]
    code, out, err = _cli("build-index", "--home", str(home.root), "--type", "auto", "--memory-budget", "4K",
                          "--threads", "1", "--json")
    assert code == 0, err
    built = json.loads(out)
    assert (built["type"], built["on_disk"], built["factory_key"]) == ("ivf-flat", True, "IVF1,Flat")
    assert built["data_bytes"] == built["n_vectors"] * (4 * 32 + 8)  # compact lists: codes and ids, no slack
    entry = home.read_manifest().index
    assert entry.spec.on_disk and home.data_path(entry).is_file()
    named = home.index_file_names(entry)  # the previous generation (flat) stays for readers until the next swap
    assert sorted(n.rsplit(".", 1)[1] for n in named if not n.endswith(".calibration.json")) == ["faiss", "ivfdata"]
    assert singerid.info(home.root, check=True).problems == ()

    code, out, err = _cli("query", *map(str, songs), "--home", str(home.root), "--nprobe", "1", "--format", "jsonl",
                          "--evidence", "0")
    assert code == 0, err
    assert [json.loads(line)["singer"] for line in out.splitlines()] == exact  # nlist = 1: exact search

    removed = ready_home.singer_of(songs[0])  # changing an on-disk index rewrites its lists beside a new file
    singerid.remove(home.root, singer=removed)
    entry = home.read_manifest().index
    named = home.index_file_names(entry)  # the lists moved beside the new file (the old pair stays one swap)
    assert sorted(n.rsplit(".", 1)[1] for n in named if not n.endswith(".calibration.json")) == ["faiss", "ivfdata"]
    assert singerid.info(home.root, check=True).problems == ()
    with singerid.open(home.root) as sid:
        assert removed not in [r.singer for r in sid.identify_many(songs, evidence=0)]

    home.data_path(entry).unlink()  # the lists are part of the index: without them it is broken
    problems = singerid.info(home.root).problems
    assert len(problems) == 1 and "of the on-disk index are missing; run `singerid build-index" in problems[0]

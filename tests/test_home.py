"""Home layout, manifest.json, and the model/store/index/manifest consistency check."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from singerid.config import FeatureConfig
from singerid.errors import ArtefactError, ParameterError
from singerid.index.choice import IndexSpec
from singerid.index.consistency import VectorsState, covered_state, find_problems, raise_if_inconsistent
from singerid.index.files import ids_sha256, sha256_file
from singerid.index.home import HOME_ENV, Home, IndexEntry, Manifest, ModelEntry
from singerid.index.store import MetadataStore
from singerid.index.store_records import NewSong
from singerid.index.vectors import VectorIndex

MODEL = "a" * 64
D = 32


def test_home_comes_from_option_then_environment_then_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Home.resolve(tmp_path / "opt", environ={HOME_ENV: str(tmp_path / "env")}).root == tmp_path / "opt"
    assert Home.resolve(None, environ={HOME_ENV: str(tmp_path / "env")}).root == tmp_path / "env"
    assert Home.resolve(None, environ={}).root == tmp_path / "singerid-home"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ParameterError, match=r"home '.*file' exists but is not a directory"):
        Home.resolve(tmp_path / "file")


def test_layout_and_database_url(tmp_path):
    home = Home.resolve(tmp_path / "h").create()
    assert home.shards_dir.is_dir() and home.index_dir.is_dir() and home.models_dir.is_dir()
    assert home.model_dir("attcrnn") == tmp_path / "h" / "models" / "attcrnn"
    assert home.db_url() == f"sqlite:///{tmp_path / 'h' / 'meta.sqlite'}"
    assert home.db_url("postgresql+psycopg://u@127.0.0.1/db") == "postgresql+psycopg://u@127.0.0.1/db"
    assert home.create() == home  # idempotent


def entry(file: str = "blocks.faiss", **changes) -> IndexEntry:
    base = IndexEntry(file=file, sha256="b" * 64, size_bytes=1234, spec=IndexSpec("hnsw", D, hnsw_m=32,
                      ef_construction=40, ef_search=64), n_vectors=90, model_sha256=MODEL,
                      feature_config=FeatureConfig(), ids_sha256="c" * 64, splits=("train",))
    return dataclasses.replace(base, **changes)


def test_manifest_round_trip(tmp_path):
    home = Home(tmp_path)
    manifest = Manifest(model=ModelEntry("attcrnn", MODEL, D), feature_config=FeatureConfig(), index=entry())
    written = home.write_manifest(manifest)
    assert written.updated_at is not None
    assert home.read_manifest() == written
    raw = json.loads(home.manifest_path.read_text())
    assert raw["format"] == "singerid-manifest" and raw["version"] == 1
    assert raw["index"]["spec"]["index_type"] == "hnsw" and raw["model"]["sha256"] == MODEL
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temporary left


def test_missing_manifest(tmp_path):
    home = Home(tmp_path)
    assert home.read_manifest(missing_ok=True) == Manifest()
    with pytest.raises(ArtefactError, match=re.escape(
            f"manifest.json does not exist; run `singerid train DATA --home {tmp_path}`, then "
            f"`singerid embed-corpus DATA --home {tmp_path}`, then `singerid build-index --home {tmp_path}`")):
        home.read_manifest()


def test_next_steps_follow_what_is_on_disk(tmp_path):
    from singerid.embedder.checkpoint import SIDECAR_FILE
    from singerid.index.home import MODEL_SIDECAR

    assert MODEL_SIDECAR == SIDECAR_FILE
    home = Home(tmp_path / "h")
    assert home.trained_kinds() == () and not home.has_vectors()
    train = f"`singerid train DATA --home {home.root}`"
    embed = f"`singerid embed-corpus DATA --home {home.root}`"
    build = f"`singerid build-index --home {home.root}`"
    assert home.next_steps() == f"run {train}, then {embed}, then {build}"
    assert home.next_steps(kind="crnn") == (f"run `singerid train DATA --model crnn --home {home.root}`, then {embed}, "
                                            f"then {build}")
    home.model_dir("crnn").mkdir(parents=True)
    (home.model_dir("crnn") / SIDECAR_FILE).write_text("{}")
    assert home.trained_kinds() == ("crnn",)
    assert home.next_steps() == f"run {embed}, then {build}"
    assert home.next_steps(kind="attcrnn").startswith("run `singerid train DATA --model attcrnn")
    home.create()
    (home.shards_dir / "shard-000000.f32").write_bytes(b"")
    assert home.next_steps() == f"run {build}"
    assert home.next_steps(embedded=False) == f"run {embed}, then {build}"


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.update(format="other"), "not a singerid manifest"),
    (lambda d: d.update(version=0), "manifest version 0, this singerid reads 1"),
    (lambda d: d.update(extra=1), r"unknown manifest field\(s\) \['extra'\]"),
    (lambda d: d["index"].pop("n_vectors"), "malformed manifest entry"),
    (lambda d: d["index"]["spec"].update(index_type="ivf"), "malformed manifest entry: index type must be one of"),
    (lambda d: d["model"].update(colour="red"), "malformed manifest entry"),
])
def test_malformed_manifests_are_refused_with_the_repair(tmp_path, mutate, message):
    home = Home(tmp_path)
    home.write_manifest(Manifest(model=ModelEntry("crnn", MODEL, D), index=entry()))
    data = json.loads(home.manifest_path.read_text())
    mutate(data)
    home.manifest_path.write_text(json.dumps(data))
    path = home.manifest_path
    with pytest.raises(ArtefactError, match=message + ".*" + re.escape(
            f"; move it aside (`mv {path} {path}.bad`), then run `singerid build-index --home {tmp_path}`")):
        home.read_manifest()


def test_a_manifest_of_a_newer_singerid_asks_for_an_upgrade_not_a_rebuild(tmp_path):
    home = Home(tmp_path)
    home.write_manifest(Manifest())
    data = json.loads(home.manifest_path.read_text())
    home.manifest_path.write_text(json.dumps({**data, "version": 99}))
    with pytest.raises(ArtefactError, match=r"manifest version 99, this singerid reads 1; it was written by a newer "
                                            r"singerid: upgrade singerid to use this home$"):
        home.read_manifest()


def test_unreadable_manifest_json(tmp_path):
    Home(tmp_path).manifest_path.write_text("{not json")
    with pytest.raises(ArtefactError, match=r"cannot read .*manifest.json: Expecting property name"):
        Home(tmp_path).read_manifest()


def test_failed_manifest_write_keeps_nothing_half_written(tmp_path):
    home = Home(tmp_path)
    home.manifest_path.mkdir()  # the rename onto it fails
    with pytest.raises(ArtefactError, match="cannot write .*manifest.json"):
        home.write_manifest(Manifest())
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_old_index_files_are_pruned_only_when_the_manifest_moved_on(tmp_path):
    home = Home(tmp_path).create()
    first, second = home.new_index_path("flat"), home.new_index_path("flat")
    assert first != second and first.parent == home.index_dir
    for path in (first, second, home.index_dir / ".x.faiss.tmp-123"):
        path.write_bytes(b"x")
    removed = home.prune_index_files(Manifest(index=entry(file=second.name)))
    assert sorted(p.name for p in removed) == sorted([first.name, ".x.faiss.tmp-123"])
    assert [p.name for p in home.index_dir.iterdir()] == [second.name]


# --- consistency ---------------------------------------------------------------------------

@pytest.fixture
def built(tmp_path):
    """A home with 3 songs in the store, a flat index of their blocks and a manifest naming both."""
    home = Home(tmp_path / "home").create()
    store = MetadataStore(home.db_url())
    store.bind_embeddings(MODEL, FeatureConfig())
    rng = np.random.default_rng(0)
    for i in range(3):
        store.add_song(NewSong(f"/c/{i}.mp3", f"{i:064x}", f"s{i}", str(i), "train", 10.0),
                       offsets_seconds=np.arange(10.0), shard=0, first_row=10 * i)
    ids = store.block_ids()
    vectors = rng.standard_normal((len(ids), D)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex.build(IndexSpec("flat", D), vectors, ids)
    path = home.new_index_path("flat")
    checksum = index.save(path)
    manifest = home.write_manifest(Manifest(
        model=ModelEntry("attcrnn", MODEL, D), feature_config=FeatureConfig(),
        index=IndexEntry(path.name, checksum, path.stat().st_size, index.spec, len(index), MODEL, FeatureConfig(),
                         ids_sha256(index.ids()))))
    yield home, manifest, store, index
    store.close()


def facts(store: MetadataStore, index: VectorIndex) -> tuple[VectorsState, VectorsState]:
    model, features = store.embedding_source()
    return (VectorsState(store.n_blocks(), ids_sha256(store.block_ids()), model, features),
            VectorsState(len(index), ids_sha256(index.ids())))


def test_a_consistent_home_has_no_problems(built):
    home, manifest, store, index = built
    store_state, index_state = facts(store, index)
    assert find_problems(home, manifest, store=store_state, index=index_state, model_sha256=MODEL,
                         feature_config=FeatureConfig(), verify_checksum=True) == []
    raise_if_inconsistent([])


def test_store_changed_after_the_build_names_build_index(built):
    home, manifest, store, index = built
    store.remove_songs(["/c/1.mp3"])
    store_state, index_state = facts(store, index)
    problems = find_problems(home, manifest, store=store_state, index=index_state)
    assert problems == [f"the store lacks 10 of the 30 blocks the index holds; "
                        f"run `singerid build-index --home {home.root}`"]
    with pytest.raises(ArtefactError, match=r"^the store lacks 10 of .*run `singerid build-index --home "):
        raise_if_inconsistent(problems)


def test_blocks_stored_after_the_build_are_pending_not_a_problem(built):
    """The index is a snapshot: the store rows it covers must match, rows added since are pending."""
    home, manifest, store, index = built
    store.add_song(NewSong("/c/new.mp3", f"{99:064x}", "s9", "new", "train", 10.0),
                   offsets_seconds=np.arange(10.0), shard=0, first_row=30)
    covered = covered_state(store.block_ids(), index.ids(), model_sha256=MODEL, feature_config=FeatureConfig())
    assert covered.n_vectors == 30 and store.n_blocks() == 40
    assert find_problems(home, manifest, store=covered, index=facts(store, index)[1], model_sha256=MODEL) == []


def test_same_count_but_other_ids_is_found(built):
    home, manifest, store, index = built
    index.remove_ids(np.array([0]))
    index.add(np.eye(D, dtype=np.float32)[:1], np.array([999]))
    problems = find_problems(home, manifest, index=facts(store, index)[1])
    assert problems == [f"the loaded index holds other block ids than the manifest's index (same count); "
                        f"run `singerid build-index --home {home.root}`"]


NEW_HOME = ("start a new home: run `singerid train DATA --model attcrnn --home NEW_HOME`, then "
            "`singerid embed-corpus DATA --home NEW_HOME`, then `singerid build-index --home NEW_HOME`")


def test_a_replaced_model_is_one_problem_whose_repair_is_a_new_home(built):
    home, manifest, store, index = built
    problems = find_problems(home, manifest, store=facts(store, index)[0], model_sha256="f" * 64,
                             feature_config=FeatureConfig(n_mels=64))
    assert problems == [f"the home's vectors were made by model aaaaaaaaaaaa, but {home.model_dir('attcrnn')} holds "
                        f"model ffffffffffff (retrained or replaced): a model only reads its own vectors; restore the "
                        f"model folder from a backup, or {NEW_HOME}"]  # no build-index: it cannot help yet
    with pytest.raises(ArtefactError, match=r"^the home's vectors were made by model aaaaaaaaaaaa.*NEW_HOME`$"):
        raise_if_inconsistent(problems)


def test_a_store_of_another_model_and_other_features_are_model_problems(built):
    home, manifest, store, index = built
    other = dataclasses.replace(facts(store, index)[0], model_sha256="e" * 64)
    assert find_problems(home, manifest, store=other, model_sha256=MODEL) == [
        f"the store's vectors were made by model eeeeeeeeeeee, but {home.model_dir('attcrnn')} holds model "
        f"aaaaaaaaaaaa (another home's store, given with --db?): a model only reads its own vectors; restore the "
        f"model folder from a backup, or {NEW_HOME}"]
    problems = find_problems(home, manifest, store=facts(store, index)[0], model_sha256=MODEL,
                             feature_config=FeatureConfig(n_mels=64))
    assert len(problems) == 1 and problems[0].startswith("the home's vectors were made with feature config ")
    assert problems[0].endswith(NEW_HOME)


def test_a_model_that_cannot_be_loaded_is_a_problem_only_when_vectors_need_it(built):
    home, manifest, store, index = built
    assert find_problems(home, manifest, store=facts(store, index)[0], model_error="no model.json") == [
        f"the home's vectors were made by model aaaaaaaaaaaa, which cannot be loaded from "
        f"{home.model_dir('attcrnn')} (no model.json); restore that folder from a backup, or {NEW_HOME}"]
    assert find_problems(home, Manifest(), model_error="no model.json") == []


def test_a_lost_manifest_over_stored_vectors_names_build_index(built):
    home, _, store, index = built
    assert find_problems(home, Manifest(), store=facts(store, index)[0], model_sha256=MODEL) == [
        f"{home.manifest_path} does not record the 30 stored blocks (missing or rewritten); "
        f"run `singerid build-index --home {home.root}`"]


def test_tampered_or_missing_index_file_is_found(built):
    home, manifest, store, index = built
    path = home.index_path(manifest.index)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes: only the checksum notices
    path.write_bytes(bytes(data))
    assert find_problems(home, manifest) == []  # quick check: size only
    assert find_problems(home, manifest, verify_checksum=True) == [
        f"index file {path} does not match its SHA-256 in the manifest; run `singerid build-index --home {home.root}`"]
    path.unlink()
    assert find_problems(home, manifest)[0].startswith(f"index file {path} named by the manifest is missing")


def test_no_index_yet(built):
    home, manifest, store, index = built
    assert find_problems(home, dataclasses.replace(manifest, index=None), store=facts(store, index)[0]) == [
        f"no index is recorded in {home.manifest_path}; run `singerid build-index --home {home.root}`"]


def test_checksums_are_of_the_file_and_of_the_id_set(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert ids_sha256(np.array([3, 1, 2])) == ids_sha256(np.array([1, 2, 3])) != ids_sha256(np.array([1, 2, 4]))

"""The voice front end through the vector database: stems cached once, every command separates the
voice itself, the LDA/WCCN back end is applied to the index, queries and enrolment, and a home
prepared with another front end (or a tampered back end) is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from singerid.audio import segment_blocks
from singerid.cli import cli
from singerid.config import FeatureConfig, ModelConfig, TrainConfig
from singerid.datasets import load_dataset
from singerid.datasets.synth import generate_corpus
from singerid.datasets.synth_spec import CorpusSpec
from singerid.embedder import checkpoint as ckpt
from singerid.embedder.cache import FeatureCache
from singerid.embedder.embed import Embedder
from singerid.embedder.train import train_embedder
from singerid.errors import SingeridError
from singerid.frontend import FrontEnd, FrontEndConfig
from singerid.index.home import Home

SPEC = CorpusSpec(singers=3, albums=3, songs_per_album=2, seconds=5.0, seed=11, audio_format="flac", stems=True)
FAST = ["--epochs", "2", "--batch-size", "8", "--threads", "1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread_module")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("voice") / "corpus"
    generate_corpus(root, SPEC, workers=1)
    return root


def invoke(*args: object) -> tuple[int, str]:
    """Run a command in-process: (exit code, output), with a library error as ``main`` reports it."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if isinstance(result.exception, SingeridError):
        return result.exception.exit_code, result.output + f"Error: {result.exception}"
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def home(corpus, tmp_path_factory) -> Home:
    """A home made by the CLI with the default (voice) recipe: train, embed-corpus, build-index."""
    root = tmp_path_factory.mktemp("voice-home") / "H"
    code, out = invoke("train", corpus, "--home", root, *FAST)
    assert code == 0, out
    code, out = invoke("embed-corpus", corpus, "--home", root, "--split", "train")
    assert code == 0, out
    code, out = invoke("build-index", "--home", root, "--backend", "lda-wccn")  # auto keeps cosine for 3 singers
    assert code == 0, out
    assert "after lda-wccn" in out
    return Home(root)


def test_the_stem_cache_separates_each_song_once_and_matches_the_query_front_end(corpus, tmp_path):
    track = load_dataset(corpus).tracks[0]
    cfg = FeatureConfig()
    vocals = FeatureCache(tmp_path, cfg, stem="vocals")
    entry = vocals.ensure(track.path)
    accompaniment = vocals.sibling("accompaniment")
    assert accompaniment.ensure(track.path).n_frames == entry.n_frames
    assert (vocals.misses, accompaniment.misses, accompaniment.hits) == (1, 0, 1)  # one separation, both stems
    mix = FeatureCache(tmp_path, cfg).ensure(track.path)
    assert mix.n_frames == entry.n_frames  # same blocks in every stem
    cached = segment_blocks(vocals.logmel(track.path).T, block_frames=32, block_hop_frames=32)
    streamed = np.concatenate([b.blocks for b in FrontEnd(cfg, FrontEndConfig(input="vocals")).iter_blocks(track.path)])
    np.testing.assert_allclose(cached, streamed, atol=1e-3)  # training sees what queries see
    wave = vocals.waveform(track.path)
    assert wave.dtype == np.float32 and wave.size == pytest.approx(SPEC.seconds * cfg.sample_rate, abs=1)
    assert vocals.misses == 1  # the PCM was written with the features: no second separation
    mixed = FeatureCache(tmp_path, cfg).logmel(track.path)
    assert not np.allclose(mixed, vocals.logmel(track.path), atol=1.0)  # the voice is not the mix


def test_the_voice_recipe_is_recorded_and_every_command_uses_it(home, corpus):
    card = ckpt.read_card(home.model_dir("attcrnn"))
    assert card.front_end.input == "vocals" and card.model_config.head == "aam"
    assert card.train_config.remix and card.train_config.gain_tilt and card.training["recipe"] == "voice"
    assert card.training["backend"] == "lda-wccn"
    manifest = json.loads(home.manifest_path.read_text())
    assert manifest["model"]["front_end"] == card.front_end.key and card.front_end.key.startswith("vocals@")
    assert manifest["index"]["front_end"] == card.front_end.key and manifest["index"]["backend"] == "lda-wccn"
    assert (home.index_dir / manifest["index"]["backend_file"]).is_file()
    assert manifest["index"]["spec"]["dim"] == 2  # LDA keeps n_singers - 1 dimensions

    test = [t for t in load_dataset(corpus).tracks if t.split == "test"]
    code, out = invoke("query", test[0].path, "--home", home.root, "--json")
    assert code == 0, out
    answer = json.loads(out)
    answer = answer[0] if isinstance(answer, list) else answer
    assert answer["n_blocks"] == 4 and answer["singer"] in {t.singer for t in test}
    code, out = invoke("info", "--home", home.root, "--check", "--json")
    assert code == 0, out
    state = json.loads(out)
    assert state["problems"] == [] and state["model"]["front_end"].startswith("vocals@")
    assert state["index"]["backend"] == "lda-wccn"


def test_enrol_adds_back_end_projected_vectors(home, corpus, tmp_path):
    from singerid.pipeline.query import QueryEngine

    work = Home(tmp_path / "H")
    shutil.copytree(home.root, work.root)
    songs = [t.path for t in load_dataset(corpus).tracks if t.split == "val"][:2]
    code, out = invoke("enrol", "Newcomer", *songs, "--home", work.root)
    assert code == 0, out
    with QueryEngine.open(work) as engine:
        assert engine.backend is not None and len(engine.index) == 3 * 2 * 4 + 2 * 4  # train songs + enrolled
        blocks = np.concatenate([b.blocks for b in engine.embedder.iter_blocks(songs[0])])
        projected = engine.project(engine.embedder.embed(blocks))
        sims, _ = engine.index.search(projected, 1)
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-4)  # the song's own projected blocks are indexed


def test_a_home_built_with_another_front_end_is_refused(home, corpus, tmp_path):
    work = Home(tmp_path / "H")
    shutil.copytree(home.root, work.root)
    data = json.loads(work.manifest_path.read_text())
    data["index"]["front_end"] = "mix"
    work.manifest_path.write_text(json.dumps(data))
    song = load_dataset(corpus).tracks[0].path
    for args in (("query", song), ("info", "--check")):
        code, out = invoke(*args, "--home", work.root)
        assert code == 1, out
        assert "the index was built with front end 'mix' but the model uses 'vocals@" in out
        assert "run `singerid build-index" in out


def test_a_tampered_back_end_is_refused(home, corpus, tmp_path):
    work = Home(tmp_path / "H")
    shutil.copytree(home.root, work.root)
    data = json.loads(work.manifest_path.read_text())
    backend = work.index_dir / data["index"]["backend_file"]
    raw = bytearray(backend.read_bytes())
    raw[-40] ^= 0xFF
    backend.write_bytes(bytes(raw))
    song = load_dataset(corpus).tracks[0].path
    code, out = invoke("query", song, "--home", work.root)
    assert code == 1
    assert "does not match the pinned" in out and "rebuild the index" in out


def test_every_lever_trains_and_is_recorded(corpus, tmp_path):
    tracks = load_dataset(corpus).tracks
    cfg = TrainConfig(epochs=2, batch_size=8, seed=3, remix=True, gain_tilt=True, album_adversary=0.1)
    result = train_embedder(tracks, feature_cfg=FeatureConfig(), model_cfg=ModelConfig(kind="crnn", head="aam"),
                            train_cfg=cfg, out_dir=tmp_path / "m", cache_dir=tmp_path / "cache",
                            front_end=FrontEndConfig(input="mix"), recipe="custom", backend="none")
    assert result.epochs_run == 2 and all(np.isfinite(r.train_loss) for r in result.history)
    embedder = Embedder.load(tmp_path / "m")
    assert embedder.front_end_config.input == "mix" and embedder.card.train_config == cfg
    blocks = np.concatenate([b.blocks for b in embedder.iter_blocks(tracks[0].path)])
    emb, logits = embedder.embed_and_logits(blocks)
    assert emb.shape == (len(blocks), 32) and logits.shape == (len(blocks), 3)
    assert np.all(np.abs(logits) <= 30.0 + 1e-3)  # AAM logits are scaled cosines (s = 30)
    # remixing needs both stems of every training song: the stem cache now holds them
    stem_dirs = {p.name for p in (tmp_path / "cache").glob("*-sep-*/*")}
    assert stem_dirs == {"vocals", "accompaniment"}


def test_embedding_from_the_stem_cache_equals_separating_again(home, corpus, tmp_path):
    from singerid.pipeline.embed_corpus import embed_tracks

    embedder = Embedder.load(home.model_dir("attcrnn"))
    songs = [t for t in load_dataset(corpus).tracks if t.split == "test"][:2]
    cache = FeatureCache.for_input(tmp_path / "cache", FeatureConfig(), embedder.front_end_config)
    streamed = embed_tracks(Home(tmp_path / "a"), songs, embedder=embedder)
    cached = embed_tracks(Home(tmp_path / "b"), songs, embedder=embedder, features=cache)
    assert cache.misses == 2  # each song separated once, into the cache
    for a, b in zip(streamed.added, cached.added):
        np.testing.assert_allclose(a.embeddings, b.embeddings, atol=1e-4)
        assert len(a.block_ids) == len(b.block_ids) == 4

"""The CUDA paths against the CPU paths: training, embedding (library and CLI) and voice separation.

Marked ``gpu``: they run whenever torch sees a CUDA GPU and are skipped, saying so, elsewhere
(tests/conftest.py). FAISS on the GPU is tested in test_vectors.py and test_pipeline.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from embed_corpus import make_tracks

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_tracks(tmp_path_factory.mktemp("gpu_corpus"), singers=3, train_songs=2, val_songs=1, seconds=4.0)


def blocks(n: int) -> np.ndarray:
    from singerid.config import FeatureConfig

    cfg = FeatureConfig()
    return (np.random.default_rng(0).standard_normal((n, cfg.n_mels, cfg.block_frames)) * 15 - 40).astype(np.float32)


def test_training_on_cuda_gives_a_model_that_embeds_alike_on_both_devices(corpus, tmp_path):
    from singerid.config import FeatureConfig, ModelConfig, TrainConfig
    from singerid.embedder.embed import Embedder
    from singerid.embedder.train import train_embedder

    result = train_embedder(corpus, feature_cfg=FeatureConfig(), model_cfg=ModelConfig(kind="attcrnn"),
                            train_cfg=TrainConfig(epochs=2, batch_size=8, lr=3e-3, patience=2, seed=0),
                            out_dir=tmp_path / "model", cache_dir=tmp_path / "cache", device="cuda")
    assert result.epochs_run == 2 and all(np.isfinite(h.train_loss) for h in result.history)
    x = blocks(64)
    cpu = Embedder.load(tmp_path / "model").embed(x)
    gpu = Embedder.load(tmp_path / "model", device="cuda").embed(x)
    np.testing.assert_allclose(gpu, cpu, atol=1e-3)


def test_embedding_songs_on_cuda_stores_the_cpu_vectors(ready_home, tmp_path):
    from singerid.pipeline.embed_corpus import embed_tracks

    test_songs = [t for t in ready_home.tracks if t.split == "test"]  # not yet stored in the ready home
    stored = {}
    for n, device in enumerate(("cpu", "cuda")):
        summary = embed_tracks(ready_home.copy(tmp_path / f"home{n}"), test_songs, device=device, durable=False)
        assert summary.n_added == len(test_songs) and summary.n_failed == 0
        stored[device] = {song.path: song.embeddings for song in summary.added}
    assert stored["cuda"].keys() == stored["cpu"].keys()
    for path, vectors in stored["cpu"].items():
        np.testing.assert_allclose(stored["cuda"][path], vectors, atol=1e-3)


def test_separation_on_cuda_equals_the_cpu(tmp_path):
    from singerid.separation import SeparationConfig, Separator
    from singerid.separation.metrics import si_sdr

    rng = np.random.default_rng(0)
    t = np.arange(12 * 16_000) / 16_000
    voice = 0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.02 * np.sin(2 * np.pi * 5 * t)))
    mix = (voice + 0.1 * rng.standard_normal(t.size)).astype(np.float32)
    cfg = SeparationConfig(precision="fp32")
    cpu = Separator.load(cfg).separate(mix)
    gpu = Separator.load(cfg, device="cuda").separate(mix)
    assert gpu.vocals.shape == cpu.vocals.shape
    assert si_sdr(gpu.vocals, cpu.vocals) > 40  # the same stems to float rounding
    assert si_sdr(gpu.accompaniment, cpu.accompaniment) > 40

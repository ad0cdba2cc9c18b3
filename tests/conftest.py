"""Shared fixtures: small generated audio written to temporary directories."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf


def pytest_collection_modifyitems(config, items):
    """``gpu`` tests run whenever torch sees a CUDA GPU; elsewhere each is skipped, saying why."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU: torch sees none on this machine")
    for item in gpu_tests:
        item.add_marker(skip)


def write_tone(path: Path, *, seconds: float, sample_rate: int = 16_000, freq_hz: float = 220.0,
               channels: int = 1, amplitude: float = 0.3, fmt: str | None = None) -> Path:
    """Write a harmonic tone with a little noise; returns ``path``."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(int(freq_hz))
    x = sum(np.sin(2 * np.pi * freq_hz * h * t) / h for h in range(1, 6)) * amplitude / 2
    x = x + 0.01 * rng.standard_normal(t.size)
    data = np.stack([x] * channels, axis=1) if channels > 1 else x
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data.astype(np.float32), sample_rate, format=fmt)
    return path


@pytest.fixture
def tone(tmp_path: Path):
    """Factory: ``tone("a.wav", seconds=3)`` writes a test tone under tmp_path."""

    def make(name: str, **kwargs) -> Path:
        return write_tone(tmp_path / name, **kwargs)

    return make


@contextlib.contextmanager
def _torch_threads(n: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_torch_thread():
    """Run the test with one torch thread (tests share 2 cores; oversubscription is slow)."""
    with _torch_threads(1):
        yield


@pytest.fixture(scope="module")
def one_torch_thread_module():
    """One torch thread for a whole module (``pytestmark = pytest.mark.usefixtures(...)``)."""
    with _torch_threads(1):
        yield


@pytest.fixture(scope="module")
def one_faiss_thread():
    """One FAISS (OpenMP) thread for a whole module (``pytestmark = pytest.mark.usefixtures(...)``):
    other tests share the 2 cores."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@dataclasses.dataclass(frozen=True)
class ReadyHome:
    """A queryable home (trained attcrnn, training split embedded, flat index) and its corpus."""

    home: Any  # singerid.index.home.Home
    tracks: list  # list[singerid.records.Track]

    def songs(self, split: str) -> list[Path]:
        return [t.path for t in self.tracks if t.split == split]

    def singer_of(self, path: Path) -> str:
        return next(t.singer for t in self.tracks if t.path == path)

    def copy(self, dest: Path) -> Any:
        """A private copy of the home for a test that changes it."""
        import shutil

        from singerid.index.home import Home

        shutil.copytree(self.home.root, dest)
        return Home(dest)


@pytest.fixture(scope="session")
def ready_home(tmp_path_factory) -> ReadyHome:
    """Built once per test session (about 10 s): 4 singers x (3 train + 1 val + 2 test) songs x 5 s.

    Read-only: tests that enrol or remove take ``ready_home.copy(tmp_path / "home")``.
    """
    from embed_corpus import make_tracks

    from singerid.config import FeatureConfig, ModelConfig, TrainConfig
    from singerid.embedder.train import train_embedder
    from singerid.index.home import Home
    from singerid.pipeline.build_index import build_index
    from singerid.pipeline.embed_corpus import embed_tracks

    root = tmp_path_factory.mktemp("ready_corpus")
    tracks = make_tracks(root, singers=4, train_songs=3, val_songs=1, test_songs=2, seconds=5.0)
    home = Home(tmp_path_factory.mktemp("ready_home")).create()
    with _torch_threads(1):
        train_embedder(tracks, feature_cfg=FeatureConfig(), model_cfg=ModelConfig(kind="attcrnn"),
                       train_cfg=TrainConfig(epochs=5, batch_size=8, lr=3e-3, patience=5, seed=0),
                       out_dir=home.model_dir("attcrnn"), cache_dir=home.root / "cache")
        embed_tracks(home, [t for t in tracks if t.split == "train"])
        build_index(home)
    return ReadyHome(home, tracks)

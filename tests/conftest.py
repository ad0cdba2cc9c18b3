"""Shared fixtures: small generated audio written to temporary directories."""

from __future__ import annotations

import contextlib

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


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

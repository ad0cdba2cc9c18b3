"""Checkpoints and the inference Embedder: safe save/load, hashes, config checks, embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from singerid.config import FeatureConfig, ModelConfig, TrainConfig
from singerid.embedder import checkpoint as ckpt
from singerid.embedder.embed import Embedder
from singerid.embedder.model import build_model
from singerid.errors import ArtefactError, ParameterError

SINGERS = ("alice", "bob", "carol")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _saved_model(model_dir: Path, kind: str = "attcrnn") -> tuple[torch.nn.Module, ckpt.ModelCard]:
    torch.manual_seed(3)
    cfg = ModelConfig(kind=kind, n_classes=len(SINGERS))
    model = build_model(cfg)
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 128, 32) * 15 - 40)  # non-trivial batch-norm statistics
    model.eval()
    card = ckpt.ModelCard(model_config=cfg, feature_config=FeatureConfig(), singers=SINGERS, weights_sha256="",
                          train_config=TrainConfig(epochs=3), metrics={"val_block_accuracy": 0.5})
    return model, ckpt.save_model(model_dir, model.state_dict(), card)


def _blocks(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, 128, 32)) * 15 - 40).astype(np.float32)


@pytest.mark.parametrize("kind", ["crnn", "attcrnn"])
def test_save_load_gives_bitwise_identical_embeddings(tmp_path: Path, kind: str) -> None:
    model, card = _saved_model(tmp_path / "m", kind)
    before = Embedder(model, card, device="cpu")
    after = Embedder.load(tmp_path / "m")
    x = _blocks(37)
    assert np.array_equal(before.embed(x, batch_size=16), after.embed(x, batch_size=16))
    assert np.array_equal(before.logits(x), after.logits(x))
    assert after.singers == SINGERS
    assert after.model_config == card.model_config and after.feature_config == FeatureConfig()
    assert after.weights_sha256 == ckpt.content_sha256(tmp_path / "m" / ckpt.WEIGHTS_FILE)


def test_embeddings_are_unit_norm_float32_deterministic(tmp_path: Path) -> None:
    _saved_model(tmp_path / "m")
    emb = Embedder.load(tmp_path / "m")
    x = _blocks(50)
    a = emb.embed(x, batch_size=8)
    assert a.dtype == np.float32 and a.shape == (50, 32) and a.flags["C_CONTIGUOUS"]
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(a, emb.embed(x, batch_size=8))  # same call, same bits
    assert np.allclose(a, emb.embed(x, batch_size=50), atol=1e-5)  # batch size does not change the result
    both, logits = emb.embed_and_logits(x, batch_size=8)
    assert np.array_equal(both, a)
    assert logits.shape == (50, 3) and logits.dtype == np.float32
    assert emb.embed(np.zeros((0, 128, 32), np.float32)).shape == (0, 32)


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    _saved_model(tmp_path / "m")
    weights = tmp_path / "m" / ckpt.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01  # one flipped bit in a weight
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match=r"model\.safetensors: SHA-256 .* does not match model\.json") as err:
        Embedder.load(tmp_path / "m")
    assert str(weights) in str(err.value) and "retrain with `singerid train`" in str(err.value)


def test_missing_and_broken_models_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtefactError, match=r"no trained model in .*empty \(model\.json is missing\)"):
        Embedder.load(tmp_path / "empty")
    _saved_model(tmp_path / "m")
    sidecar = tmp_path / "m" / ckpt.SIDECAR_FILE
    data = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(ArtefactError, match="model format version 99, this singerid reads 1"):
        Embedder.load(tmp_path / "m")
    sidecar.write_text("{not json")
    with pytest.raises(ArtefactError, match="unreadable model sidecar"):
        Embedder.load(tmp_path / "m")


def test_weights_of_another_architecture_are_refused(tmp_path: Path) -> None:
    _saved_model(tmp_path / "m", "crnn")
    sidecar = tmp_path / "m" / ckpt.SIDECAR_FILE
    data = json.loads(sidecar.read_text())
    data["model_config"]["kind"] = "attcrnn"
    sidecar.write_text(json.dumps(data))
    with pytest.raises(ArtefactError, match="weights do not fit the attcrnn architecture"):
        Embedder.load(tmp_path / "m")


def test_feature_config_mismatch_is_refused(tmp_path: Path) -> None:
    _saved_model(tmp_path / "m")
    emb = Embedder.load(tmp_path / "m")
    emb.check_features(FeatureConfig())
    with pytest.raises(ArtefactError, match=r"hop_samples=256 \(model: 512\), n_mels=64 \(model: 128\)"):
        emb.check_features(FeatureConfig(hop_samples=256, n_mels=64))


def test_bad_blocks_and_devices_are_parameter_errors(tmp_path: Path) -> None:
    _saved_model(tmp_path / "m")
    emb = Embedder.load(tmp_path / "m")
    with pytest.raises(ParameterError, match=r"blocks must be an array \(n, 128, 32\), got \(4, 64, 32\)"):
        emb.embed(np.zeros((4, 64, 32), np.float32))
    with pytest.raises(ParameterError, match="got dtype float64"):
        emb.embed(np.zeros((4, 128, 32)))
    bad = _blocks(3)
    bad[1, 5, 5] = np.nan
    with pytest.raises(ParameterError, match=r"NaN or infinite values \(1 of 3 blocks\)"):
        emb.embed(bad)
    with pytest.raises(ParameterError, match="batch_size must be >= 1, got 0"):
        emb.embed(_blocks(2), batch_size=0)
    with pytest.raises(ParameterError, match="unsupported device 'meta'"):
        Embedder.load(tmp_path / "m", device="meta")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="device 'cuda' requested but CUDA is not available"):
            Embedder.load(tmp_path / "m", device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cpu_checkpoint_loads_on_cuda_and_agrees(tmp_path: Path) -> None:
    _saved_model(tmp_path / "m")
    cpu, gpu = Embedder.load(tmp_path / "m"), Embedder.load(tmp_path / "m", device="cuda")
    x = _blocks(64)
    assert gpu.device.startswith("cuda")
    assert np.allclose(cpu.embed(x), gpu.embed(x), atol=1e-3)


def test_training_state_round_trip_is_weights_only(tmp_path: Path) -> None:
    model, _ = _saved_model(tmp_path / "m")
    opt = torch.optim.Adam(model.parameters())
    model.train()
    opt.zero_grad()
    model(_blocks_tensor()).sum().backward()
    opt.step()
    path = tmp_path / "last.pt"
    ckpt.save_state(path, {"model": model.state_dict(), "optimizer": opt.state_dict(), "history": [{"epoch": 1}]})
    state = ckpt.load_state(path)
    assert state["history"] == [{"epoch": 1}]
    assert torch.equal(state["model"]["head.weight"], model.state_dict()["head.weight"])
    opt.load_state_dict(state["optimizer"])
    assert ckpt.load_state(tmp_path / "absent.pt") is None
    path.write_bytes(b"garbage")
    assert ckpt.load_state(path) is None  # a corrupt state means: start over


def _blocks_tensor() -> torch.Tensor:
    return torch.from_numpy(_blocks(4))

"""The two networks: shapes, the attention of eq. 1-3, the eval-mode pooling shortcut, bad configs."""

from __future__ import annotations

import pytest
import torch

from singerid.config import ModelConfig
from singerid.embedder.model import CRNN, Attention, AttentionCRNN, build_model
from singerid.errors import ParameterError


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("kind, cls", [("crnn", CRNN), ("attcrnn", AttentionCRNN)])
def test_shapes_of_both_models(kind: str, cls: type) -> None:
    cfg = ModelConfig(kind=kind, n_classes=5)
    torch.manual_seed(0)
    model = build_model(cfg)
    assert isinstance(model, cls)
    x = torch.randn(3, 128, 32) * 20 - 50  # (batch, n_mels, frames), dB-like
    assert model.cnn.steps == 2  # 32 frames / (2*2*2*2) time pooling
    assert model.cnn(x).shape == (3, 2, 128)  # (batch, steps, channels)
    for mode in (model.train, model.eval):
        mode()
        emb, logits = model.embed_and_logits(x)
        assert emb.shape == (3, cfg.embedding_dim) == (3, 32)
        assert logits.shape == (3, 5)
        assert model(x).shape == (3, 5)


def test_attention_weights_are_a_softmax_over_steps() -> None:
    torch.manual_seed(0)
    att = Attention(8)
    h = torch.randn(4, 3, 8)  # (batch, steps, units)
    c, alpha = att(h)
    assert alpha.shape == (4, 3)
    assert torch.allclose(alpha.sum(dim=1), torch.ones(4))
    assert torch.allclose(c, (alpha.unsqueeze(2) * h).sum(dim=1), atol=1e-6)  # eq. 1


def _trained_like(kind: str) -> torch.nn.Module:
    torch.manual_seed(1)
    model = build_model(ModelConfig(kind=kind, n_classes=4))
    model.train()
    with torch.no_grad():
        for _ in range(3):  # move the batch-norm running statistics away from their start
            model(torch.randn(8, 128, 32) * 15 - 40)
        for block in model.cnn.blocks:
            block.norm.weight.uniform_(0.5, 1.5)
            block.norm.bias.uniform_(-0.5, 0.5)
    return model


@pytest.mark.parametrize("kind", ["crnn", "attcrnn"])
def test_eval_pool_first_shortcut_gives_the_baseline_output(kind: str) -> None:
    model = _trained_like(kind).eval()
    assert all(block.pool_first for block in model.cnn.blocks)
    x = torch.randn(6, 128, 32) * 15 - 40
    with torch.inference_mode():
        fast = model(x)
        for block in model.cnn.blocks:
            block.pool_first = False  # force the baseline order conv -> ELU -> BN -> pool
        slow = model(x)
    assert torch.allclose(fast, slow, rtol=1e-5, atol=1e-5)


def test_pool_first_only_in_eval_and_only_with_positive_scales() -> None:
    model = _trained_like("attcrnn")
    assert not any(block.pool_first for block in model.cnn.blocks)  # training mode
    with torch.no_grad():
        model.cnn.blocks[1].norm.weight[3] = -0.2
    model.eval()
    assert [block.pool_first for block in model.cnn.blocks] == [True, False, True, True]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["cnn.blocks.1.norm.weight"][3] = 0.7
    model.load_state_dict(state)  # loading new weights re-checks the scales
    assert all(block.pool_first for block in model.cnn.blocks)


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ParameterError, match="n_classes >= 2, got 1"):
        build_model(ModelConfig(kind="crnn", n_classes=1))
    with pytest.raises(ParameterError, match=r"turn \(64 mels, 32 frames\) into \(0, 2\)"):
        build_model(ModelConfig(kind="attcrnn", n_classes=3, n_mels=64))

"""AAM-softmax head, gradient reversal and the album adversary."""

from __future__ import annotations

import math
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from singerid.embedder.losses import AAMSoftmax, AlbumAdversary, ganin_weight, reverse_gradient
from singerid.errors import ParameterError


def test_aam_margin_reduces_only_the_target_logit_in_training():
    torch.manual_seed(0)
    head = AAMSoftmax(8, 5, margin=0.2, scale=30.0)
    emb, labels = torch.randn(16, 8), torch.randint(0, 5, (16,))
    cos = F.normalize(emb, dim=1) @ F.normalize(head.weight, dim=1).T  # (16, 5)
    train_logits = head(emb, labels)
    theta = torch.acos(cos.gather(1, labels[:, None]).clamp(-1, 1))
    expected_target = torch.where(theta + 0.2 <= math.pi, 30.0 * torch.cos(theta + 0.2),
                                  30.0 * (torch.cos(theta) - 0.2 * math.sin(0.2)))
    assert torch.allclose(train_logits.gather(1, labels[:, None]), expected_target, atol=1e-4)
    assert torch.all(train_logits.gather(1, labels[:, None]) < 30.0 * cos.gather(1, labels[:, None]))
    others = torch.ones_like(cos, dtype=torch.bool).scatter(1, labels[:, None], False)
    assert torch.allclose(train_logits[others], 30.0 * cos[others], atol=1e-5)
    head.eval()
    assert torch.allclose(head(emb, labels), 30.0 * cos, atol=1e-5)  # no margin at inference
    assert torch.allclose(head.logits(emb), 30.0 * cos, atol=1e-5)
    head.train()
    assert torch.allclose(head(emb), 30.0 * cos, atol=1e-5)  # no labels, no margin


def test_aam_target_logit_is_decreasing_in_the_angle_and_below_the_cosine():
    head = AAMSoftmax(2, 2, margin=0.2, scale=1.0)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    theta = torch.linspace(0, math.pi, 2001)
    emb = torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)  # angle theta to class 0
    phi = head(emb, torch.zeros(2001, dtype=torch.long))[:, 0]
    assert torch.all(phi[1:] <= phi[:-1] + 1e-6) and torch.all(phi <= torch.cos(theta) + 1e-6)
    easy = AAMSoftmax(2, 2, margin=0.2, scale=1.0, easy_margin=True)
    with torch.no_grad():
        easy.weight.copy_(head.weight)
    phi_easy = easy(emb, torch.zeros(2001, dtype=torch.long))[:, 0]
    wide = theta > math.pi / 2 + 1e-3
    assert torch.allclose(phi_easy[wide], torch.cos(theta[wide]), atol=1e-5)


def test_aam_gradients_flow_and_are_finite_at_the_class_vector():
    head = AAMSoftmax(4, 3)
    emb = head.weight.detach()[:2].clone().requires_grad_(True)  # cos = 1 with the target exactly
    loss = F.cross_entropy(head(emb, torch.tensor([0, 1])), torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(emb.grad).all() and torch.isfinite(head.weight.grad).all()
    assert head.weight.grad.abs().sum() > 0


def test_aam_bad_arguments_raise():
    with pytest.raises(ParameterError, match="n_classes >= 2"):
        AAMSoftmax(8, 1)
    with pytest.raises(ParameterError, match="margin"):
        AAMSoftmax(8, 4, margin=2.0)
    with pytest.raises(ParameterError, match=r"embeddings \(b, 8\)"):
        AAMSoftmax(8, 4).logits(torch.zeros(3, 5))


def test_aam_learns_gaussian_clusters_quickly(one_torch_thread):
    started = time.perf_counter()
    gen = torch.Generator().manual_seed(0)
    centres = 3.0 * torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.7, 0.7], [-0.7, 0.7]])
    labels = torch.arange(6).repeat_interleave(100)
    x = centres[labels] + 0.3 * torch.randn(600, 2, generator=gen)
    torch.manual_seed(0)
    net, head = nn.Linear(2, 8), AAMSoftmax(8, 6)
    optim = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=0.05)
    for _ in range(150):
        optim.zero_grad()
        F.cross_entropy(head(net(x), labels), labels).backward()
        optim.step()
    head.eval()
    accuracy = float((head.logits(net(x)).argmax(1) == labels).float().mean())
    assert accuracy > 0.97
    assert time.perf_counter() - started < 5.0


def test_gradient_reversal_negates_and_scales_exactly():
    x = torch.randn(5, 3, requires_grad=True)
    y = reverse_gradient(x, 0.3)
    assert torch.equal(y, x)
    upstream = torch.randn(5, 3)
    y.backward(upstream)
    assert torch.equal(x.grad, -0.3 * upstream)


def test_album_adversary_reverses_into_the_embedding_and_trains_its_head():
    torch.manual_seed(0)
    adversary = AlbumAdversary(4, 3, hidden=8, weight=0.5)
    emb = torch.randn(6, 4, requires_grad=True)
    albums = torch.tensor([0, 1, 2, 0, 1, 2])
    F.cross_entropy(adversary(emb), albums).backward()
    reversed_grad = emb.grad.clone()
    head_grad = adversary.net[0].weight.grad.clone()

    plain = torch.randn(6, 4).copy_(emb.detach()).requires_grad_(True)
    adversary.zero_grad()
    F.cross_entropy(adversary.net(plain), albums).backward()
    assert torch.allclose(reversed_grad, -0.5 * plain.grad, atol=1e-7)
    assert torch.allclose(head_grad, adversary.net[0].weight.grad, atol=1e-7)  # the head is not reversed


def test_album_adversary_masks_other_singers_albums():
    adversary = AlbumAdversary(4, 4, album_singers=[0, 0, 1, 1])
    logits = adversary(torch.randn(2, 4), torch.tensor([0, 1]))
    assert torch.isinf(logits[0, 2:]).all() and torch.isfinite(logits[0, :2]).all()
    assert torch.isinf(logits[1, :2]).all() and torch.isfinite(logits[1, 2:]).all()
    assert torch.isfinite(F.cross_entropy(logits, torch.tensor([1, 2])))
    with pytest.raises(ParameterError, match="album_singers has 3 entries for 4 albums"):
        AlbumAdversary(4, 4, album_singers=[0, 0, 1])


def test_ganin_weight_schedule():
    assert ganin_weight(0.0) == 0.0
    assert abs(ganin_weight(1.0) - (2 / (1 + math.exp(-10)) - 1)) < 1e-12
    assert 0.0 < ganin_weight(0.1) < ganin_weight(0.5) < ganin_weight(1.0) < 1.0

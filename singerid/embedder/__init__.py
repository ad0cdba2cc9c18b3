"""Stage 1 of KNN-Net: the CRNN / Attention-CRNN block embedder.

model.py (the networks), cache.py (log-mel feature cache), data.py (training blocks),
train.py (``train_embedder``), checkpoint.py (model directory on disk), embed.py
(``Embedder``, used at inference). Names below load on first use, so importing this
package does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"Embedder": "singerid.embedder.embed", "train_embedder": "singerid.embedder.train",
            "TrainResult": "singerid.embedder.train", "ModelCard": "singerid.embedder.checkpoint"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'singerid.embedder' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

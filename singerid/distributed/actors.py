"""The Ray Data worker of ``embed-corpus --engine ray``: the model loads once per actor, one song per call.

``SongEmbedder`` follows Ray Data's batch-inference pattern (a callable class given to
``map_batches``): ``__init__`` loads the embedder (and, for a "vocals" model, its front end loads
the separator on first use), ``__call__`` takes a batch dict of numpy arrays (song numbers and
paths) and returns one (vectors, block offsets, durations, errors). It never touches the store:
the driver is the single writer. The model travels as bytes (``ModelFiles``), so a node needs
singerid and the corpus, not the home.
"""

from __future__ import annotations

import logging
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singerid.errors import ArtefactError, AudioError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """A model directory (model.json + model.safetensors) as bytes, for actors on nodes without the home."""

    sidecar: bytes  # model.json
    weights: bytes  # model.safetensors
    weights_sha256: str  # hex, as the driver's embedder has it

    @classmethod
    def read(cls, model_dir: Path, *, weights_sha256: str) -> ModelFiles:
        """Read ``model_dir``. Raises ArtefactError when its weights are not the ones ``weights_sha256`` names."""
        from singerid.embedder.cache import content_sha256
        from singerid.embedder.checkpoint import SIDECAR_FILE, WEIGHTS_FILE

        weights_path = Path(model_dir) / WEIGHTS_FILE
        if content_sha256(weights_path) != weights_sha256:
            raise ArtefactError(f"{weights_path} changed while embed-corpus started; run it again")
        return cls((Path(model_dir) / SIDECAR_FILE).read_bytes(), weights_path.read_bytes(), weights_sha256)

    def load(self, *, device: str = "cpu"):  # noqa: ANN201 - singerid.embedder.embed.Embedder
        """The checked ``Embedder`` on ``device``. Raises ArtefactError if the bytes are not that model."""
        from singerid.embedder.checkpoint import SIDECAR_FILE, WEIGHTS_FILE
        from singerid.embedder.embed import Embedder

        with tempfile.TemporaryDirectory(prefix="singerid-model-") as tmp:
            (Path(tmp) / SIDECAR_FILE).write_bytes(self.sidecar)
            (Path(tmp) / WEIGHTS_FILE).write_bytes(self.weights)
            embedder = Embedder.load(Path(tmp), device=device)
        if embedder.weights_sha256 != self.weights_sha256:
            raise ArtefactError(f"the model sent to Ray worker {socket.gethostname()} is not the driver's "
                                f"({embedder.weights_sha256[:12]} != {self.weights_sha256[:12]})")
        return embedder


class SongEmbedder:
    """Ray Data callable class: audio files in, their block embeddings out.

    Input batch: ``song`` int64 (b,) (the driver's number for each song), ``path`` str (b,)
    (absolute; every node must see the corpus at that path). Output batch: ``song`` int64 (b,),
    ``error`` str (b,) ("" when the song embedded; else the file's error, as the local engine
    records it), ``embeddings`` float32 (b, n, d) (an object array of (n_i, d) when lengths differ; (0, d)
    for a failed song), ``offsets_seconds`` float64 likewise, ``duration_seconds`` float64 (b,).
    Other exceptions propagate: Ray Data stops the run, as the local engine would.
    """

    def __init__(self, model: ModelFiles, *, device: str = "cpu", threads: int = 1, batch_size: int = 64,
                 version: str | None = None) -> None:
        import torch

        import singerid

        if version is not None and version != singerid.__version__:
            raise ArtefactError(f"Ray worker {socket.gethostname()} runs singerid {singerid.__version__}, the driver "
                                f"{version}; install the same version on every node")
        torch.set_num_threads(threads)
        self.embedder = model.load(device=device)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from singerid.pipeline.embed_corpus import FILE_ERRORS, embed_song, file_error

        d = self.embedder.embedding_dim
        embeddings, offsets, durations, errors = [], [], [], []
        for path in batch["path"]:
            try:
                vectors = embed_song(_check_on_node(str(path)), self.embedder, batch_size=self.batch_size)
            except FILE_ERRORS as exc:  # recorded by the driver as the local engine records it
                embeddings.append(np.zeros((0, d), dtype=np.float32))
                offsets.append(np.zeros(0, dtype=np.float64))
                durations.append(0.0)
                errors.append(file_error(str(path), exc))
            else:
                embeddings.append(vectors.embeddings)
                offsets.append(vectors.offsets_seconds)
                durations.append(vectors.duration_seconds)
                errors.append("")
        return {"song": np.asarray(batch["song"], dtype=np.int64), "error": np.asarray(errors, dtype=object),
                "embeddings": _column(embeddings), "offsets_seconds": _column(offsets),
                "duration_seconds": np.asarray(durations, dtype=np.float64)}


def _check_on_node(path: str) -> Path:
    """``path`` as a Path; AudioError naming the node when this node cannot see it (the driver could)."""
    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: no such file on Ray node {socket.gethostname()} (every node must see the corpus "
                         "at the same path)")
    return p


def _column(arrays: list[np.ndarray]) -> np.ndarray:
    """Stack equal-shaped arrays into one (b, ...) array, else an object array of b arrays."""
    if len({a.shape for a in arrays}) == 1:
        return np.stack(arrays)
    column = np.empty(len(arrays), dtype=object)
    for i, array in enumerate(arrays):  # one by one: numpy would try to broadcast a list of arrays
        column[i] = array
    return column

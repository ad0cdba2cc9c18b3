"""Crash-safe file writing and checksums shared by the index parts.

A file is written under a temporary name in its own directory, flushed to disk, then renamed
over the target with ``os.replace`` (atomic on POSIX): readers see the old file or the new one,
never a partial one, and a failure leaves no temporary file behind.

``crash_point`` marks the moments between durable steps of a write; the crash tests
(tests/test_kills.py, scripts/bench_reliability.py) set ``SINGERID_CRASH_AT=N`` to make the process
SIGKILL itself at the N-th point it passes, which visits every interleaving deterministically.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from singerid.errors import ArtefactError

log = logging.getLogger(__name__)

HASH_CHUNK_BYTES = 1 << 20
CRASH_ENV = "SINGERID_CRASH_AT"  # tests only: SIGKILL this process at the N-th crash point (1-based)
_crash_points_passed = 0


def crash_point(name: str) -> None:
    """A moment between two durable steps of a write; a no-op unless $SINGERID_CRASH_AT is set.

    With ``SINGERID_CRASH_AT=N`` the N-th call in this process kills it with SIGKILL (no cleanup,
    no atexit, as ``kill -9`` would), so a test can stop a command at every point in turn.
    """
    target = os.environ.get(CRASH_ENV)
    if not target:
        return
    global _crash_points_passed
    _crash_points_passed += 1
    if _crash_points_passed == int(target):
        log.warning("crash point %d (%s): killing this process", _crash_points_passed, name)
        os.kill(os.getpid(), signal.SIGKILL)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of the file's bytes, read in 1 MiB chunks. Raises ArtefactError if unreadable."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
    except OSError as exc:
        raise ArtefactError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def ids_sha256(ids: np.ndarray) -> str:
    """Order-independent fingerprint of a set of int64 ids: SHA-256 of the sorted little-endian array.

    Used to compare the id sets of store, index and manifest without keeping both in memory
    (8 bytes per id; about 10 ms per million ids).
    """
    arr = np.sort(np.asarray(ids, dtype="<i8").ravel())
    return hashlib.sha256(arr.tobytes()).hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (best effort where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, on error delete it.

    The caller writes the complete file to the yielded path. Raises ArtefactError if the rename fails.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        try:
            yield tmp
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            crash_point(f"{path.name} written, not yet renamed")
            os.replace(tmp, path)
        except OSError as exc:
            raise ArtefactError(f"cannot write {path}: {exc.strerror or exc}") from exc
        fsync_dir(path.parent)
        crash_point(f"{path.name} renamed")
    finally:
        if tmp.exists():
            tmp.unlink()
            log.debug("removed temporary file %s", tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + fsync + os.replace)."""
    with atomic_target(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_with(path: Path, write: Callable[[Path], None]) -> str:
    """Let ``write(tmp_path)`` produce the file, then install it atomically; returns its SHA-256."""
    with atomic_target(path) as tmp:
        write(tmp)
        checksum = sha256_file(tmp)
    return checksum

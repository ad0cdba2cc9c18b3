"""Append-only embedding shard files: the block embeddings, row for row, beside the metadata store.

A shard is ``shard-NNNNNN.f32``: a 64-byte header (magic, version, dimension) then float32 rows of
``dim`` values. The store's block rows say which shard and row hold each embedding. A song is
appended (and fsynced) before its rows are committed, so after a crash a shard can only hold
*extra* rows at its end - never miss committed ones. ``ShardSet.open_writer`` therefore truncates
every shard to the rows the store knows (``MetadataStore.shard_row_counts``), which makes any
interrupted run repairable with no duplicated and no missing blocks. One writer at a time holds
an exclusive lock on the directory (``writer_lock``; build-index and the index swaps of every
writer hold it too); readers memory-map the files and never take it.

Every row has a CRC-32 in ``shard-NNNNNN.crc`` (little-endian uint32 per row, appended and
fsynced after the rows and before the store commits them, truncated with them by the repair):
``gather`` checks the rows it reads (and that they are finite), so a flipped, truncated or NaN
row is refused where it is used; ``verify`` checks every committed row (``info --check``).
Shards of homes written before checksums get theirs on the next append (trust on first use).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from singerid.errors import ArtefactError, ParameterError
from singerid.index.files import crash_point

log = logging.getLogger(__name__)

SHARD_MAGIC = b"SIDSHRD1"
SHARD_VERSION = 1
HEADER = struct.Struct("<8sII48x")  # magic, version, dim, reserved: 64 bytes
DEFAULT_MAX_ROWS_PER_SHARD = 1 << 20  # 1,048,576 rows = 128 MiB at d=32 (ours)
LOCK_FILE = ".writer.lock"
_NAME = re.compile(r"shard-(\d{6})\.f32")
CRC_BYTES = 4  # one little-endian CRC-32 per row in shard-NNNNNN.crc
VERIFY_CHUNK_ROWS = 65_536  # rows checked at a time by ``verify``


@dataclass(frozen=True, slots=True)
class ShardSpan:
    """Rows ``first_row .. first_row + n_rows - 1`` of shard ``shard`` (one song's blocks)."""

    shard: int
    first_row: int
    n_rows: int


def shard_path(directory: Path, shard: int) -> Path:
    return Path(directory) / f"shard-{shard:06d}.f32"


def crc_path(directory: Path, shard: int) -> Path:
    return Path(directory) / f"shard-{shard:06d}.crc"


def row_crcs(rows: np.ndarray) -> np.ndarray:
    """uint32 (n,): CRC-32 of each row's little-endian float32 bytes (rows: float32 (n, d))."""
    raw = np.ascontiguousarray(rows, dtype="<f4").view(np.uint8).reshape(len(rows), -1)
    return np.fromiter((zlib.crc32(r) for r in raw), dtype=np.uint32, count=len(raw))


@contextlib.contextmanager
def writer_lock(directory: Path) -> Iterator[None]:
    """Hold the exclusive writer lock of ``directory`` (the shards folder) for the block.

    Raises ArtefactError at once if another process holds it.
    """
    fd = _take_lock(Path(directory))
    try:
        yield
    finally:
        os.close(fd)


def writer_active(directory: Path) -> bool:
    """Whether some process holds the writer lock of ``directory`` now (readers use it to tell a
    writer's swap in progress from a damaged home)."""
    path = Path(directory) / LOCK_FILE
    if not path.is_file():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the shared lock, if taken


def _take_lock(directory: Path) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ArtefactError(f"another singerid process is writing to {directory.parent}; "
                            "wait for it to finish") from None
    return fd


class ShardSet:
    """The shard files of one home. Construct directly to read; use ``open_writer`` to append."""

    def __init__(self, directory: Path, dim: int, *, max_rows_per_shard: int = DEFAULT_MAX_ROWS_PER_SHARD) -> None:
        if dim <= 0 or max_rows_per_shard <= 0:
            raise ParameterError(f"dim and max_rows_per_shard must be positive, got {dim}, {max_rows_per_shard}")
        self.directory = Path(directory)
        self.dim = int(dim)
        self.max_rows_per_shard = int(max_rows_per_shard)
        self.row_bytes = 4 * self.dim
        self._maps: dict[int, np.memmap] = {}
        self._lock_fd: int | None = None
        self.durable = True
        self.repaired: dict[int, int] = {}  # rows dropped per shard by open_writer's repair

    @classmethod
    def open_writer(cls, directory: Path, dim: int, *, committed_rows: Mapping[int, int],
                    max_rows_per_shard: int = DEFAULT_MAX_ROWS_PER_SHARD, durable: bool = True) -> ShardSet:
        """Lock ``directory`` for appending and truncate each shard to its ``committed_rows``.

        committed_rows: shard -> rows the store references (``MetadataStore.shard_row_counts()``).
        ``durable`` fsyncs each append (survives power loss, not just a killed process).
        Raises ArtefactError if another writer holds the lock or a shard lacks committed rows.
        """
        shards = cls(directory, dim, max_rows_per_shard=max_rows_per_shard)
        shards.durable = durable
        shards.directory.mkdir(parents=True, exist_ok=True)
        shards._lock()
        try:
            shards.repaired = shards.repair(committed_rows)
        except BaseException:
            shards.close()
            raise
        return shards

    def take_over(self, *, committed_rows: Mapping[int, int], durable: bool = True) -> None:
        """Make this set the writer while the caller holds ``writer_lock`` of its directory: repair
        as ``open_writer`` does (the lock is the caller's, and stays with it)."""
        self.durable = durable
        self._lock_fd = -1  # writes allowed; close() leaves the caller's lock alone
        self.repaired = self.repair(committed_rows)

    def _lock(self) -> None:
        self._lock_fd = _take_lock(self.directory)

    def close(self) -> None:
        """Drop memory maps and release the writer lock."""
        self._maps.clear()
        if self._lock_fd is not None and self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def __enter__(self) -> ShardSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- layout ---------------------------------------------------------------------------
    def shard_ids(self) -> list[int]:
        """Shard numbers present on disk, ascending."""
        if not self.directory.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.directory.iterdir() if (m := _NAME.fullmatch(p.name)))

    def rows_on_disk(self, shard: int) -> int:
        """Whole rows in the shard file (a partial trailing row from a crash is not counted)."""
        path = shard_path(self.directory, shard)
        self._check_header(path)
        return (path.stat().st_size - HEADER.size) // self.row_bytes

    def _check_header(self, path: Path) -> None:
        try:
            with open(path, "rb") as fh:
                raw = fh.read(HEADER.size)
        except OSError as exc:
            raise ArtefactError(f"cannot read shard {path}: {exc.strerror or exc}") from exc
        if len(raw) < HEADER.size:
            raise ArtefactError(f"shard {path} is shorter than its {HEADER.size}-byte header")
        magic, version, dim = HEADER.unpack(raw)
        if magic != SHARD_MAGIC or version != SHARD_VERSION:
            raise ArtefactError(f"{path} is not a singerid shard (version {SHARD_VERSION})")
        if dim != self.dim:
            raise ArtefactError(f"shard {path} holds {dim}-d vectors but the model makes {self.dim}-d ones; "
                                "embed into a new home")

    # --- writing --------------------------------------------------------------------------
    def repair(self, committed_rows: Mapping[int, int]) -> dict[int, int]:
        """Truncate each shard to the rows the store references; returns rows dropped per shard.

        Raises ArtefactError if the store references a missing shard or rows beyond a shard's end.
        """
        self._require_writer()
        on_disk = set(self.shard_ids())
        missing = sorted(set(s for s, n in committed_rows.items() if n > 0) - on_disk)
        if missing:
            raise ArtefactError(f"the store references shard {missing[0]} but {shard_path(self.directory, missing[0])} "
                                "is missing; embed into a new home")
        dropped: dict[int, int] = {}
        for shard in sorted(on_disk):
            keep = int(committed_rows.get(shard, 0))
            have = self.rows_on_disk(shard)
            if have < keep:
                raise ArtefactError(f"shard {shard} has {have} rows but the store references {keep}; "
                                    "the shard was truncated outside singerid - embed into a new home")
            path = shard_path(self.directory, shard)
            if path.stat().st_size != HEADER.size + keep * self.row_bytes:
                os.truncate(path, HEADER.size + keep * self.row_bytes)
                dropped[shard] = have - keep
                log.warning("shard %d: dropped %d uncommitted row(s) left by an interrupted run", shard, have - keep)
            crcs = crc_path(self.directory, shard)
            if crcs.is_file() and crcs.stat().st_size > keep * CRC_BYTES:
                os.truncate(crcs, keep * CRC_BYTES)
        self._maps.clear()
        return dropped

    def append(self, vectors: np.ndarray) -> ShardSpan:
        """Append float32 (n, dim) rows to the current shard (a new one when it is full); never splits them.

        Returns where they went. Commit the matching block rows to the store only after this returns.
        """
        self._require_writer()
        arr = np.ascontiguousarray(vectors, dtype="<f4")
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ParameterError(f"shard rows must have shape (n, {self.dim}), got {arr.shape}")
        ids = self.shard_ids()
        shard = ids[-1] if ids else 0
        rows = self.rows_on_disk(shard) if ids else 0
        if not ids or (rows > 0 and rows + len(arr) > self.max_rows_per_shard):
            shard = shard + 1 if ids else 0
            self._create(shard)
            rows = 0
        path = shard_path(self.directory, shard)
        with open(path, "r+b") as fh:
            fh.seek(HEADER.size + rows * self.row_bytes)
            fh.write(arr.tobytes())
            fh.flush()
            if self.durable:
                os.fsync(fh.fileno())
        self._maps.pop(shard, None)
        crash_point(f"shard {shard}: rows appended, checksums not yet")
        self._append_crcs(shard, rows, arr)
        crash_point(f"shard {shard}: checksums appended")
        return ShardSpan(shard, rows, len(arr))

    def _append_crcs(self, shard: int, first_row: int, arr: np.ndarray) -> None:
        """Write the CRC-32s of rows ``first_row ..`` (after those of the rows before, backfilled for
        a shard written before checksums existed)."""
        path = crc_path(self.directory, shard)
        have = path.stat().st_size // CRC_BYTES if path.is_file() else 0
        if have != first_row:
            before = self._map(shard)[have:first_row] if have < first_row else None
            if before is None:
                raise ArtefactError(f"{path} holds {have} checksums but shard {shard} only {first_row} rows")
            log.warning("shard %d: checksumming %d existing row(s) written without checksums", shard, len(before))
            arr = np.concatenate([before, arr])
        with open(path, "r+b" if path.is_file() else "wb") as fh:
            fh.seek(have * CRC_BYTES)
            fh.write(row_crcs(arr).astype("<u4").tobytes())
            fh.truncate()
            fh.flush()
            if self.durable:
                os.fsync(fh.fileno())

    def _create(self, shard: int) -> None:
        """Create an empty shard atomically, so a file never exists without its full header."""
        path = shard_path(self.directory, shard)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(HEADER.pack(SHARD_MAGIC, SHARD_VERSION, self.dim))
        os.replace(tmp, path)

    def _require_writer(self) -> None:
        if self._lock_fd is None:
            raise ParameterError(f"shards in {self.directory} were opened read-only; use ShardSet.open_writer")

    # --- reading --------------------------------------------------------------------------
    def gather(self, shards: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """float32 (n, dim): the rows at (shards[i], rows[i]), read from memory-mapped shard files.

        Raises ArtefactError if a location lies beyond the end of its shard.
        """
        shards = np.asarray(shards, dtype=np.int64)
        rows = np.asarray(rows, dtype=np.int64)
        if shards.shape != rows.shape or shards.ndim != 1:
            raise ParameterError(f"shards and rows must be equal-length 1-D arrays, got {shards.shape}, {rows.shape}")
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        for shard in np.unique(shards):
            mask = shards == shard
            table = self._map(int(shard))
            wanted = rows[mask]
            if len(wanted) and (wanted.max() >= len(table) or wanted.min() < 0):
                bad = int(wanted.max() if wanted.max() >= len(table) else wanted.min())
                raise ArtefactError(f"shard {int(shard)} has {len(table)} rows, the store asks for row {bad}; "
                                    "the store and shards disagree - embed into a new home")
            out[mask] = table[wanted]
            self._check_rows(int(shard), wanted, out[mask])
        return out

    def _crcs(self, shard: int) -> np.ndarray | None:
        """The shard's row checksums, memory-mapped (None for a shard written before checksums)."""
        path = crc_path(self.directory, shard)
        if not path.is_file():
            return None
        n = path.stat().st_size // CRC_BYTES
        return np.memmap(path, dtype="<u4", mode="r", shape=(n,)) if n else np.zeros(0, np.uint32)

    def _check_rows(self, shard: int, rows: np.ndarray, values: np.ndarray) -> None:
        """ArtefactError unless ``values`` (the rows ``rows`` of ``shard``) are finite and match their CRC-32."""
        where = f"shard {shard} ({shard_path(self.directory, shard)})"
        if not np.isfinite(values).all():
            bad = int(rows[~np.isfinite(values).all(axis=1)][0])
            raise ArtefactError(f"{where}: row {bad} holds NaN or infinite values; the shard is damaged - "
                                "restore the home from a backup or embed into a new home")
        crcs = self._crcs(shard)
        if crcs is None or len(rows) == 0:
            return
        if int(rows.max()) >= len(crcs):
            raise ArtefactError(f"{where}: row {int(rows.max())} has no checksum ({len(crcs)} recorded); the shard "
                                "is damaged - restore the home from a backup or embed into a new home")
        wrong = row_crcs(values) != crcs[rows]
        if wrong.any():
            raise ArtefactError(f"{where}: {int(wrong.sum())} row(s) do not match their checksum (first: row "
                                f"{int(rows[wrong][0])}); the shard is damaged - restore the home from a backup or "
                                "embed into a new home")

    def verify(self, committed_rows: Mapping[int, int]) -> list[str]:
        """Check every committed row (``MetadataStore.shard_row_counts()``): present, finite, matching
        its checksum. Returns one line per damaged shard (empty: all good). Reads every row."""
        problems = []
        for shard, n_rows in sorted(committed_rows.items()):
            try:
                have = self.rows_on_disk(shard) if shard_path(self.directory, shard).is_file() else 0
                if have < n_rows:
                    raise ArtefactError(f"shard {shard} ({shard_path(self.directory, shard)}) has {have:,} rows, "
                                        f"the store references {n_rows:,}; the shard was truncated - restore the "
                                        "home from a backup or embed into a new home")
                for start in range(0, n_rows, VERIFY_CHUNK_ROWS):
                    rows = np.arange(start, min(n_rows, start + VERIFY_CHUNK_ROWS))
                    self._check_rows(shard, rows, np.asarray(self._map(shard)[rows]))
            except ArtefactError as exc:
                problems.append(str(exc))
        return problems

    def _map(self, shard: int) -> np.ndarray:
        if shard not in self._maps:
            path = shard_path(self.directory, shard)
            if not path.is_file():
                raise ArtefactError(f"shard file {path} is missing")
            n = self.rows_on_disk(shard)
            self._maps[shard] = (np.memmap(path, dtype="<f4", mode="r", offset=HEADER.size, shape=(n, self.dim))
                                 if n else np.zeros((0, self.dim), dtype=np.float32))
        return self._maps[shard]

"""Uploaded songs: saved to a private temporary folder, checked before any decoding, then removed.

The decoders need a file (mp3 and flac are read by libsndfile from disk), so each upload is
copied under its own sub-folder with its original file name: the name in error messages and
in the stored song id is the one the client sent, and the temporary folder is cut out of
every message.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import anyio.to_thread
from starlette.datastructures import UploadFile

from singerid.api import probe as probe_audio
from singerid.errors import ParameterError, SingeridError
from singerid.service.config import ServiceLimits
from singerid.service.errors import ServiceError

COPY_CHUNK_BYTES = 1024**2
_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()+,-]+")


def safe_name(filename: str | None, fallback: str = "upload") -> str:
    """A file name that cannot climb out of a folder: the last path part, odd characters as "_"."""
    name = _UNSAFE.sub("_", Path((filename or "").replace("\\", "/")).name).strip(" .")
    return name[:120] or fallback


def singer_folder(singer: str) -> str:
    """A folder name per singer that two different names never share (slug + hash of the name)."""
    digest = hashlib.sha256(singer.encode()).hexdigest()[:8]
    return f"{safe_name(singer, 'singer')[:60]}-{digest}"


class Uploads:
    """The uploaded songs of one request (use as a context manager; the folder goes at exit)."""

    def __init__(self, limits: ServiceLimits) -> None:
        self.limits = limits
        self.root = Path(tempfile.mkdtemp(prefix="singerid-upload-"))
        self.names: dict[Path, str] = {}  # saved path -> name the client gave
        self.kept: list[Path] = []  # files moved out by ``keep`` (not those it found already there)

    def __enter__(self) -> Uploads:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    async def save(self, upload: object, field: str) -> Path:
        """Copy one uploaded file here and check its header: readable audio, not too long."""
        if not isinstance(upload, UploadFile):
            raise ParameterError(f"form field {field!r} must be an uploaded audio file, got text")
        name = safe_name(upload.filename, "song")
        folder = self.root / str(len(self.names))
        folder.mkdir()
        path = folder / name
        with path.open("wb") as out:
            await anyio.to_thread.run_sync(shutil.copyfileobj, upload.file, out, COPY_CHUNK_BYTES)
        self.names[path] = name
        with self.named_errors():
            await anyio.to_thread.run_sync(self.check_duration, path)
        return path

    def check_duration(self, path: Path) -> None:
        seconds = probe_audio(path).duration_seconds
        if seconds > self.limits.max_seconds:
            raise ServiceError(f"{self.names[path]}: {seconds:.0f} s is longer than this server accepts "
                               f"({self.limits.max_seconds:.0f} s); send a shorter excerpt",
                               status=413, kind="AudioTooLong")

    def shown(self, text: str) -> str:
        """``text`` with every saved path replaced by the name the client gave."""
        for path, name in self.names.items():
            text = text.replace(str(path), name)
        return text.replace(str(self.root), "<upload>")

    @contextlib.contextmanager
    def named_errors(self) -> Iterator[None]:
        """Re-raise library errors with the client's file names instead of temporary paths."""
        try:
            yield
        except ServiceError:
            raise
        except SingeridError as exc:
            text = self.shown(str(exc))
            if text == str(exc):
                raise
            raise type(exc)(text) from exc

    def keep(self, path: Path, folder: Path) -> Path:
        """Move a saved upload into ``folder`` for good (enrolled songs), under a name not yet taken there.

        A file with the same name and the same bytes is reused, so uploading a song twice leaves one copy.
        """
        folder.mkdir(parents=True, exist_ok=True)
        stem, suffix = Path(self.names[path]).stem, Path(self.names[path]).suffix
        for n in range(1, 1000):
            dest = folder / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
            if not dest.exists():
                shutil.move(path, dest)
                self.names[dest] = self.names.pop(path)
                self.kept.append(dest)
                return dest
            if _same_bytes(dest, path):
                self.names[dest] = self.names.pop(path)
                return dest
        raise ParameterError(f"{self.names[path]}: too many uploads with this name in {folder}")


    def discard_kept(self, paths: Iterable[Path] | None = None) -> None:
        """Delete files that ``keep`` moved out (all of them, or those of ``paths``): an enrol that failed."""
        for path in list(self.kept if paths is None else paths):
            if path in self.kept:
                path.unlink(missing_ok=True)
                self.kept.remove(path)


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    return _sha256(a) == _sha256(b)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(COPY_CHUNK_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()

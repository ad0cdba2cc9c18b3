"""Process set-up the audio front end needs before librosa (and so numba) is imported.

librosa compiles some functions with ``numba.jit(cache=True)``; numba writes that cache beside
librosa's sources or under ``~/.cache``, and a user who may write neither (a service account,
a read-only venv) got an internal error on first use. Then we point ``NUMBA_CACHE_DIR`` at a
private temporary folder instead. A value the user set is always kept.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path


def ensure_numba_cache() -> str | None:
    """Set ``NUMBA_CACHE_DIR`` to a writable temp folder when numba's default places are not
    writable; returns the folder set, or None when nothing was needed."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    if _writable(_librosa_dir()) or _writable(_user_cache_dir()):
        return None
    folder = Path(tempfile.gettempdir()) / f"singerid-numba-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        folder = Path(tempfile.mkdtemp(prefix="singerid-numba-"))
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    return str(folder)


def _librosa_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec("librosa")
    except (ImportError, ValueError):
        return None
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base)


def _writable(folder: Path | None) -> bool:
    """Whether numba could create its cache under ``folder`` (it or its nearest existing parent)."""
    if folder is None:
        return False
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return os.access(probe, os.W_OK | os.X_OK)

"""Progress a person can see: a labelled bar on a terminal, a line per stage elsewhere, or nothing.

Library functions take ``progress: ProgressArg`` and hand it to :class:`Progress`; the CLI picks
the mode (``singerid.cli.common.progress_mode``). Modes:

- ``"bar"``: a tqdm bar labelled with the stage (``embed songs``, ``train epoch 3/30``);
- ``"lines"``: one line when the stage ends (``embed-corpus: 120/120 songs, 3,480 blocks in 12.3 s``)
  and one every ~30 s while it runs, logged at INFO on the ``singerid.progress`` logger (the CLI
  prints that logger's lines unless ``-q``);
- ``"off"``: nothing.

The old boolean is still accepted: ``True`` is ``"bar"``, ``False`` and ``None`` are ``"off"``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, Literal, TypeVar

from singerid.errors import ParameterError

log = logging.getLogger(__name__)  # "singerid.progress": the CLI gives it a plain, message-only handler

Mode = Literal["bar", "lines", "off"]
ProgressArg = Mode | bool | None
MODES: tuple[Mode, ...] = ("bar", "lines", "off")
LINE_EVERY_S = 30.0  # ours: a long stage says it is alive twice a minute
T = TypeVar("T")


def resolve_mode(progress: ProgressArg) -> Mode:
    """The mode of ``progress``: a mode name, or the old bool (True = bar, False/None = off).

    Raises ParameterError for anything else.
    """
    if progress is None or progress is False:
        return "off"
    if progress is True:
        return "bar"
    if progress in MODES:
        return progress
    raise ParameterError(f"unknown progress mode {progress!r}: use one of {', '.join(MODES)} (or True/False)")


class Progress:
    """One stage's progress: ``update()`` as work finishes, ``close(extra)`` (or leave the ``with``) at the end.

    ``label`` names the stage (``"embed-corpus"``, ``"train epoch 3/30"``), ``total`` the work units
    expected and ``unit`` their singular name (``"song"``, ``"batch"``). With ``total=None`` the
    stage has no bar, only its lines (``note`` and the closing line), on a terminal too.
    """

    def __init__(self, label: str, *, total: int | None = None, unit: str = "item",
                 progress: ProgressArg = "off", every_s: float = LINE_EVERY_S) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.mode = resolve_mode(progress)
        self.n = 0
        self.every_s = every_s
        self.started = self._last_line = time.perf_counter()
        self._closed = False
        self._bar: Any = None
        if self.mode == "bar" and total is not None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, unit=unit, leave=True, dynamic_ncols=True)

    def update(self, n: int = 1, **postfix: Any) -> None:
        """Count ``n`` more units done; ``postfix`` (e.g. ``blocks=120``) shows beside the bar."""
        self.n += n
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(n)
        elif self.mode != "off":
            now = time.perf_counter()
            if now - self._last_line >= self.every_s:
                self._last_line = now
                log.info("%s: %s so far (%s)", self.label, self._count(), _eta(now - self.started, self.n, self.total))

    def note(self, message: str) -> None:
        """A line about the stage (``"build-index: training IVF1024,Flat on 40,000 vectors"``), unless off."""
        if self.mode == "off":
            return
        text = f"{self.label}: {message}"
        if self._bar is not None:
            self._bar.write(text)
        else:
            log.info("%s", text)

    def close(self, extra: str = "") -> None:
        """End the stage; in lines mode say what was done and how long it took (``extra`` goes in the line)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            if extra:
                self._bar.set_postfix_str(extra, refresh=False)
            self._bar.close()
        elif self.mode != "off":
            seconds = time.perf_counter() - self.started
            said = ", ".join(part for part in (self._count(), extra) if part) or "done"
            log.info("%s: %s in %s", self.label, said, format_seconds(seconds))

    def _count(self) -> str:
        if self.total is None:
            return f"{self.n:,} {plural(self.unit, self.n)}" if self.n else ""
        return f"{self.n:,}/{self.total:,} {plural(self.unit, self.total)}"

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:  # a failed stage says nothing more than the error itself
            self._closed = True
            if self._bar is not None:
                self._bar.close()


def track(items: Iterable[T], label: str, *, unit: str = "item", total: int | None = None,
          progress: ProgressArg = "off") -> Iterator[T]:
    """Yield ``items`` while counting them on a :class:`Progress` (total: ``len(items)`` when it has one)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(label, total=total, unit=unit, progress=progress) as bar:
        for item in items:
            yield item
            bar.update()


def plural(unit: str, n: int) -> str:
    """``unit`` for ``n`` things: "song" -> "songs", "batch" -> "batches" (n == 1 and units ending in s stay)."""
    if n == 1 or unit.endswith("s"):
        return unit
    return f"{unit}es" if unit.endswith(("ch", "sh", "x")) else f"{unit}s"


def format_seconds(seconds: float) -> str:
    """A human duration: "12.3 s", "4m05s", "1h02m"."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _eta(elapsed: float, n: int, total: int | None) -> str:
    if not total or n <= 0 or n >= total:
        return f"{format_seconds(elapsed)} elapsed"
    return f"{format_seconds(elapsed)} elapsed, about {format_seconds(elapsed / n * (total - n))} left"

"""`singerid check-audio`: decode files with the front end and report what a query would see."""

from __future__ import annotations

from pathlib import Path

import click

from singerid.cli.common import json_option, print_json
from singerid.errors import AudioError, printable


@click.command("check-audio")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
def check_audio(files: tuple[Path, ...], as_json: bool) -> None:
    """Decode FILES as singerid would and report duration and 1-s blocks, or the error.

    Exits 1 if any file is unusable (missing, corrupt, truncated, silent, shorter than one
    block, past the limits on duration, rate or channels...); every file is still reported.
    File names with control characters or bytes that are not UTF-8 are shown with escapes (\\n, \\x1b, \\xff).

    \b
    Example:
      singerid check-audio song.mp3 other.flac
    """
    from singerid.audio import LogMel, iter_song_blocks, probe_audio
    from singerid.config import FeatureConfig

    cfg = FeatureConfig()
    front = LogMel(cfg)
    rows = []
    for path in files:
        try:
            info = probe_audio(path)
            n = sum(len(batch) for batch in iter_song_blocks(path, cfg, logmel=front))
            rows.append({"file": printable(path), "ok": True, "format": info.format, "sample_rate": info.sample_rate,
                         "channels": info.channels, "seconds": round(info.duration_seconds, 2), "blocks": n})
        except AudioError as exc:
            rows.append({"file": printable(path), "ok": False, "error": printable(" ".join(str(exc).split()))})
    if as_json:
        print_json(rows)
    else:
        for row in rows:
            if row["ok"]:
                click.echo(f"ok    {row['file']}: {row['format']} {row['sample_rate']} Hz x{row['channels']}, "
                           f"{row['seconds']:.2f} s, {row['blocks']} blocks")
            else:
                click.echo(f"error {row['error']}", err=True)
    failed = sum(not row["ok"] for row in rows)
    if failed:
        raise AudioError(f"{failed} of {len(rows)} file(s) unusable")

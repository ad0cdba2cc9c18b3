"""`singerid separate`: split songs into vocals and accompaniment with the Spleeter 2-stem U-Nets."""

from __future__ import annotations

import os
from pathlib import Path

import click

from singerid.cli.common import (
    check_device_option, device_option, json_option, print_json, progress_mode, set_threads, threads_option,
)
from singerid.errors import AudioError, ParameterError

STEM_CHOICES = ("vocals", "accompaniment")


def _parse_stems(text: str) -> tuple[str, ...]:
    stems = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in stems if s not in STEM_CHOICES]
    if bad or not stems:
        raise ParameterError(f"--stems {text!r}: expected a comma-separated list of {', '.join(STEM_CHOICES)}")
    return tuple(dict.fromkeys(stems))


@click.command("separate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the stem files (created if missing).")
@click.option("--stems", default=",".join(STEM_CHOICES), show_default=True,
              help="Which stems to write, comma-separated.")
@click.option("--format", "audio_format", type=click.Choice(["flac", "wav"]), default="flac", show_default=True,
              help="flac: 16-bit; wav: 32-bit float.")
@threads_option
@device_option
@json_option
def separate(files: tuple[Path, ...], out_dir: Path, stems: str, audio_format: str, threads: int | None,
             device: str, as_json: bool) -> None:
    """Separate FILES into vocals and accompaniment, written as OUT/<name>.<stem>.flac.

    Audio is decoded to 16 kHz mono (the pipeline's rate) and streamed in bounded memory. A bad
    file is reported and skipped; the command exits 1 if any file failed.

    \b
    Example:
      singerid separate song.mp3 other.flac --out stems/
      singerid separate song.mp3 --out stems/ --stems vocals --format wav --threads 2
    """
    which = _parse_stems(stems)
    # Before torch loads OpenMP (if it has not yet): sleeping rather than spinning idle threads keeps
    # several threads fast on a machine shared with other jobs (measured 5-10x); no cost when idle.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from singerid.separation import Separator
    from singerid.separation.files import separate_files

    set_threads(threads)
    separator = Separator.load(device=check_device_option(device))
    summary = separate_files(separator, files, out_dir, stems=which, audio_format=audio_format,
                             progress=progress_mode())
    if as_json:
        print_json({"files": [{"file": r.path, "ok": r.ok, "seconds": round(r.seconds, 3), "outputs": list(r.outputs),
                               **({"error": r.error} if r.error else {})} for r in summary.results],
                    "seconds": round(summary.audio_seconds, 3), "wall_seconds": round(summary.wall_seconds, 3),
                    "x_real_time": round(summary.x_real_time, 1), "failed": summary.n_failed})
    else:
        for r in summary.results:
            if not r.ok:
                click.echo(f"failed: {r.error}", err=True)
        click.echo(summary.line())
    if summary.n_failed:
        raise AudioError(f"{summary.n_failed} of {len(summary.results)} file(s) could not be separated")

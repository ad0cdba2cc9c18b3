"""``singerid synth-corpus``: write a synthetic-singer corpus in artist20's layout."""

from __future__ import annotations

import time
from pathlib import Path

import click

from singerid.cli.common import available_cores, json_option, print_json, progress_mode
from singerid.datasets.synth_spec import CorpusSpec

DEFAULTS = CorpusSpec()  # option defaults come from the dataclass


@click.command("synth-corpus")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--singers", type=int, default=DEFAULTS.singers, show_default=True, help="Number of singers (>= 2).")
@click.option("--albums", type=int, default=DEFAULTS.albums, show_default=True,
              help="Albums per singer (>= 3; 6 give the paper's 4/1/1 album split, 3 give 1/1/1).")
@click.option("--songs-per-album", type=int, default=DEFAULTS.songs_per_album, show_default=True,
              help="Songs per album (1..99).")
@click.option("--seconds", type=float, default=DEFAULTS.seconds, show_default=True, help="Length of each song.")
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True,
              help="Seed of voices, albums, songs and the album split; same seed, same bytes.")
@click.option("--format", "audio_format", type=click.Choice(["mp3", "flac"]), default=DEFAULTS.audio_format,
              show_default=True, help="mp3: 32 kbit/s like artist20; flac: lossless 16-bit.")
@click.option("--sample-rate", type=int, default=DEFAULTS.sample_rate, show_default=True, help="Hz.")
@click.option("--voice-ratio-db", type=(float, float), default=DEFAULTS.voice_ratio_db, show_default=True,
              metavar="LOW HIGH", help="Range of each song's voice/accompaniment ratio while singing (dB).")
@click.option("--stems/--no-stems", default=DEFAULTS.stems, show_default=True,
              help="Also write each song's vocals and accompaniment (16-bit FLAC) under OUT/stems/.")
@click.option("--workers", type=int, default=None,
              help="Worker processes rendering songs [default: all cores available].")
@json_option
def synth_corpus(out: Path, singers: int, albums: int, songs_per_album: int, seconds: float, seed: int,
                 audio_format: str, sample_rate: int, voice_ratio_db: tuple[float, float], stems: bool,
                 workers: int | None, as_json: bool) -> None:
    """Write a synthetic-singer corpus to OUT in artist20's layout.

    Every singer is a fixed source-filter voice (pitch range, glottal source, formants,
    breathiness, vibrato); every album has its own accompaniment and production, drawn
    independently of the singer; every song is mixed at its own voice/accompaniment ratio.
    OUT gets mp3s-32k/<singer>/<Album>/<NN-Title>.mp3, lists/a20-*.list (album split
    4/1/1 with SEED) and corpus.json (how each singer and song was made). With --stems, each
    song's vocals and accompaniment as mastered for the mix go to
    stems/mp3s-32k/<singer>/<Album>/<NN-Title>.{vocals,accompaniment}.flac (the dataset
    readers never scan stems/). OUT must be new, empty or a previous synthetic corpus (kept
    when it holds this corpus and its files check out, else replaced).

    \b
    Example:
      singerid synth-corpus demo-corpus --singers 8 --albums 6 --songs-per-album 3 --seconds 20
      singerid synth-corpus tiny --singers 3 --albums 3 --songs-per-album 1 --seconds 4 --format flac
      singerid synth-corpus sep-corpus --singers 4 --albums 3 --seconds 10 --stems
      singerid synth-corpus tiny --singers 3 --albums 3 --seconds 4 --json
    """
    from singerid.datasets.synth import generate_corpus

    spec = CorpusSpec(singers=singers, albums=albums, songs_per_album=songs_per_album, seconds=seconds,
                      seed=seed, audio_format=audio_format, sample_rate=sample_rate,
                      voice_ratio_db=tuple(voice_ratio_db), stems=stems)
    n_workers = workers if workers is not None else max(1, min(available_cores(), spec.n_songs))
    started = time.perf_counter()
    manifest = generate_corpus(out, spec, workers=n_workers, progress=progress_mode())
    elapsed = time.perf_counter() - started
    hours = manifest.audio_seconds / 3600
    splits = {s: sum(a.split == s for a in manifest.albums) for s in ("train", "val", "test")}
    if as_json:
        print_json({"out": str(out), "fresh": manifest.fresh, "songs": len(manifest.songs), "singers": spec.singers,
                    "albums_per_singer": spec.albums, "songs_per_album": spec.songs_per_album,
                    "audio_seconds": round(manifest.audio_seconds, 2), "bytes": manifest.n_bytes,
                    "format": audio_format, "seed": seed, "seconds": round(elapsed, 3), "albums_by_split": splits,
                    "mean_voice_ratio_db": round(manifest.mean_voice_ratio_db, 2),
                    "stems": str(out / "stems") if spec.stems else None})
        return
    if not manifest.fresh:
        click.echo(f"{out} already holds this corpus ({len(manifest.songs)} songs, {hours:.2f} h, files checked); "
                   "nothing to do")
        return
    click.echo(f"wrote {len(manifest.songs)} songs ({spec.singers} singers x {spec.albums} albums x "
               f"{spec.songs_per_album} songs, {hours:.2f} h, {manifest.n_bytes / 1e6:.1f} MB {audio_format}) "
               f"to {out} in {elapsed:.1f} s ({manifest.audio_seconds / max(elapsed, 1e-9):.0f}x real time); "
               f"albums train/val/test {splits['train']}/{splits['val']}/{splits['test']}; "
               f"mean voice/accompaniment {manifest.mean_voice_ratio_db:+.1f} dB"
               + (f"; stems in {out / 'stems'}" if spec.stems else ""))

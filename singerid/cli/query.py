"""``singerid query`` and ``singerid similar``: thin shells over ``singerid.api``.

query: files, folders (recursive), glob patterns and ``--list FILE``; the model and index load
once; each answer is printed as soon as it is decided (text, json, jsonl or csv); a bad file is
reported in its place and the rest go on (exit 1 at the end if any failed).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import click

from singerid import constants as C
from singerid.cli.common import (
    db_option, device_option, home_option, is_quiet, json_option, print_json, threads_option,
)
from singerid.errors import ParameterError, SingeridError

FORMATS = ("text", "json", "jsonl", "csv")


@click.command("query")
@click.argument("songs", nargs=-1, type=click.Path(path_type=Path))
@home_option
@db_option
@click.option("--list", "list_file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default=None,
              help="A file naming songs, folders or patterns, one per line ('-' = standard input).")
@click.option("--k", type=click.IntRange(1), default=C.K_NEIGHBOURS, show_default=True,
              help="Nearest reference blocks per query block (paper: 11).")
@click.option("--method", type=click.Choice(["knn", "softmax"]), default="knn", show_default=True,
              help="knn = KNN-Net vote over the index; softmax = the classifier head.")
@click.option("--top", type=click.IntRange(0), default=5, show_default=True, help="Runners-up to show.")
@click.option("--evidence", "n_evidence", type=click.IntRange(0), default=3, show_default=True,
              help="Reference songs to show as evidence.")
@click.option("--similar", "n_similar", type=click.IntRange(0), default=0, show_default=True,
              help="Also list the singers closest in timbre to the song (centroid cosine).")
@click.option("--min-similarity", type=click.FloatRange(-1, 1), default=None,
              help="Answer 'unknown singer' below this mean top-1 similarity (softmax: mean top probability).")
@click.option("--min-share", type=click.FloatRange(0, 1), default=None,
              help="Answer 'unknown singer' below this winning vote share.")
@click.option("--reject-unknown", is_flag=True,
              help="Answer 'unknown singer' below the similarity threshold that build-index calibrated "
                   "(equal error rate of known vs never-heard singers in the reference set).")
@click.option("--nprobe", type=click.IntRange(1), default=None,
              help="IVF cells searched per block (ivf-flat/ivf-pq indexes; more = closer to exact, slower) "
                   "[default: the index's, set by build-index].")
@click.option("--ef", "ef_search", type=click.IntRange(1), default=None,
              help="HNSW search breadth (hnsw indexes) [default: the index's, set by build-index].")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text for people; json (one array), jsonl (one object per line) or csv for machines.")
@json_option
@device_option
@threads_option
def query(songs: tuple[Path, ...], home: Path, db_url: str | None, list_file: Path | None, k: int, method: str,
          top: int, n_evidence: int, n_similar: int, min_similarity: float | None, min_share: float | None,
          reject_unknown: bool, nprobe: int | None, ef_search: int | None, fmt: str, as_json: bool, device: str,
          threads: int | None) -> None:
    """Say who sings each of SONGS (files, folders, patterns), with runners-up and the evidence.

    Answers stream out as they are decided. A bad file is reported in its place and the
    others are still answered; the exit code is 1 if any failed. --json is --format json.

    \b
    Example:
      singerid query song.mp3 --home H
      singerid query music/ 'live/*.flac' --home H --format csv > answers.csv
      singerid query --list tracks.txt --home H --format jsonl
      singerid query stranger.mp3 --home H --reject-unknown --similar 3
      singerid query song.mp3 --home H --nprobe 64
    """
    import singerid
    from singerid.audio.discover import expand_audio_inputs

    if not songs and list_file is None:
        raise click.UsageError("name at least one song, folder or pattern, or give --list FILE")
    fmt = "json" if as_json else fmt
    options = dict(k=k, method=method, top=top, evidence=n_evidence, similar=n_similar,
                   min_similarity=min_similarity, min_share=min_share, reject_unknown=reject_unknown,
                   nprobe=nprobe, ef_search=ef_search)
    writer = _Writer(fmt)
    n_total = n_failed = 0
    with singerid.open(home, db=db_url, device=device, threads=threads) as sid:
        for result in sid.identify_many(expand_audio_inputs(songs, list_file=list_file), **options):
            n_total += 1
            n_failed += not result.ok
            writer.write(result)
    writer.close()
    if n_total == 0:
        raise ParameterError("no audio files found in " + ", ".join(map(str, songs or (list_file,))))
    if n_failed:
        raise SingeridError(f"{n_failed} of {n_total} song(s) could not be identified")


@click.command("similar")
@click.argument("singer", required=False)
@click.option("--song", type=click.Path(path_type=Path), default=None, help="Singers closest to this song instead.")
@click.option("--top", type=click.IntRange(1), default=5, show_default=True, help="How many singers to list.")
@home_option
@db_option
@json_option
@device_option
@threads_option
def similar(singer: str | None, song: Path | None, top: int, home: Path, db_url: str | None, as_json: bool,
            device: str, threads: int | None) -> None:
    """List the singers closest in timbre to SINGER, or to a song (--song FILE).

    Closeness is the cosine similarity of centroids: a singer's centroid is the normalised
    mean of their indexed blocks' embeddings, in the space the KNN vote searches (after the
    index's back end); a song's centroid is the same over its blocks.

    \b
    Example:
      singerid similar "Nina Simone" --home H
      singerid similar --song unknown.mp3 --home H --top 3 --json
    """
    import singerid

    if (singer is None) == (song is None):
        raise click.UsageError("give a SINGER or --song FILE (one of them)")
    with singerid.open(home, db=db_url, device=device, threads=threads) as sid:
        found = sid.similar(singer, top=top) if singer is not None else sid.similar(song=song, top=top)
    if as_json:
        print_json({"singer": singer, "song": str(song) if song else None, "method": "cosine of centroids",
                    "similar": [s.to_dict() for s in found]})
        return
    click.echo(f"closest to {singer if singer is not None else song} (cosine of centroids):")
    width = max([len(s.singer) for s in found] + [6])
    for s in found:
        click.echo(f"  {s.singer:<{width}}  {s.similarity:6.3f}  ({s.n_blocks:,} blocks)")


class _Writer:
    """Prints results as they come: text, a JSON array (valid once closed), JSON lines or CSV."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.count = 0
        self.csv: csv.DictWriter | None = None

    def write(self, result: Any) -> None:
        if self.fmt == "text":
            _print_text(result)
        elif self.fmt == "jsonl":
            click.echo(json.dumps(result.to_dict()))
        elif self.fmt == "json":
            body = json.dumps(result.to_dict(), indent=2)
            click.echo(("[\n" if self.count == 0 else ",\n") + body, nl=False)
        else:
            if self.csv is None:
                from singerid.results import CSV_FIELDS

                self.csv = csv.DictWriter(sys.stdout, fieldnames=CSV_FIELDS, lineterminator="\n")
                self.csv.writeheader()
            self.csv.writerow(result.csv_row())
        self.count += 1
        sys.stdout.flush()

    def close(self) -> None:
        if self.fmt == "json":
            click.echo("[]" if self.count == 0 else "\n]")


def _print_text(result: Any) -> None:
    if not result.ok:
        click.echo(f"Error: {result.error}", err=True)
        return
    d = result.to_dict()
    who = d["singer"] if d["known"] else f"unknown singer (closest: {d['predicted']})"
    click.echo(f"{d['song']}: {who}  vote {d['vote_share']:.0%} of {d['n_blocks']} blocks, "
               f"{d['similarity_kind']} {d['similarity']:.2f} [{d['method']}]")
    if is_quiet():
        return
    if d["runners_up"]:
        click.echo("  runners-up: " + ", ".join(f"{r['singer']} {r['vote_share']:.0%}" for r in d["runners_up"]))
    for e in d["evidence"]:
        click.echo(f"  evidence: {e['song']} ({e['singer']}) {e['n_matches']} matches, best {e['similarity']:.3f}: "
                   f"query {e['query_offset_s']:.1f} s ~ reference {e['reference_offset_s']:.1f} s")
    if d.get("similar_singers"):
        click.echo("  similar singers: " + ", ".join(f"{s['singer']} {s['similarity']:.2f}"
                                                     for s in d["similar_singers"]))

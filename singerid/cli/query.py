"""``singerid query``: who sings each song, with runners-up and the evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from singerid import constants as C
from singerid.cli.common import db_option, home_option, json_option, print_json
from singerid.errors import SingeridError


def _home(path: Path):
    from singerid.index.home import Home

    return Home.resolve(path)


@click.command("query")
@click.argument("songs", nargs=-1, required=True, type=click.Path(path_type=Path))
@home_option
@db_option
@click.option("--k", type=click.IntRange(1), default=C.K_NEIGHBOURS, show_default=True,
              help="Nearest reference blocks per query block (paper: 11).")
@click.option("--method", type=click.Choice(["knn", "softmax"]), default="knn", show_default=True,
              help="knn = KNN-Net vote over the index; softmax = the classifier head.")
@click.option("--top", type=click.IntRange(0), default=5, show_default=True, help="Runners-up to show.")
@click.option("--evidence", "n_evidence", type=click.IntRange(0), default=3, show_default=True,
              help="Reference songs to show as evidence.")
@click.option("--min-similarity", type=click.FloatRange(-1, 1), default=None,
              help="Answer 'unknown' below this mean top-1 similarity (softmax: mean top probability).")
@click.option("--min-share", type=click.FloatRange(0, 1), default=None,
              help="Answer 'unknown' below this winning vote share.")
@click.option("--reject-unknown", is_flag=True,
              help="Answer 'unknown' below the similarity threshold that build-index calibrated "
                   "(equal error rate of known vs never-heard singers in the reference set).")
@json_option
def query(songs: tuple[Path, ...], home: Path, db_url: str | None, k: int, method: str, top: int, n_evidence: int,
          min_similarity: float | None, min_share: float | None, reject_unknown: bool, as_json: bool) -> None:
    """Say who sings each of SONGS, with runners-up and the evidence.

    A bad file is reported and the others still answered (exit 1 if any failed).

    \b
    Example:
      singerid query song.mp3 --home H
      singerid query a.mp3 b.flac --home H --json
      singerid query stranger.mp3 --home H --reject-unknown
    """
    from singerid.pipeline.query import QueryEngine, QueryOptions

    options = QueryOptions(k=k, method=method, top=top, n_evidence=n_evidence, min_similarity=min_similarity,
                           min_share=min_share, reject_unknown=reject_unknown)
    results: list[dict[str, Any]] = []
    failed = 0
    with QueryEngine.open(_home(home), db_url=db_url) as engine:
        for path in songs:
            try:
                decision = engine.identify(path, options)
            except SingeridError as exc:
                failed += 1
                results.append({"song": str(path), "error": str(exc)})
                if not as_json:
                    click.echo(f"Error: {exc}", err=True)
                continue
            row = _decision_dict(decision)
            results.append(row)
            if not as_json:
                _print_decision(row)
    if as_json:
        print_json(results)
    if failed:
        raise SingeridError(f"{failed} of {len(songs)} song(s) could not be identified")


def _decision_dict(d) -> dict[str, Any]:
    return {
        "song": d.song, "singer": d.singer, "predicted": d.predicted, "vote_share": round(d.vote_share, 4),
        "n_blocks": d.n_blocks, "method": d.method, "mean_similarity": round(d.mean_similarity, 4),
        "runners_up": [{"singer": s, "vote_share": round(v, 4)} for s, v in d.runners_up],
        "evidence": [{"song": e.song, "path": e.path, "singer": e.singer, "album": e.album, "n_matches": e.n_matches,
                      "similarity": round(e.best_similarity, 4), "query_offset_s": round(e.query_offset_seconds, 2),
                      "reference_offset_s": round(e.reference_offset_seconds, 2)} for e in d.evidence],
        "timings_s": {key: round(v, 4) for key, v in d.timings.items()},
    }


def _print_decision(row: dict[str, Any]) -> None:
    unknown = "" if row["singer"] == row["predicted"] else f" (closest: {row['predicted']})"
    click.echo(f"{row['song']}: {row['singer']}{unknown}  vote {row['vote_share']:.0%} of {row['n_blocks']} blocks, "
               f"mean similarity {row['mean_similarity']:.2f} [{row['method']}]")
    if row["runners_up"]:
        click.echo("  runners-up: " + ", ".join(f"{r['singer']} {r['vote_share']:.0%}" for r in row["runners_up"]))
    for e in row["evidence"]:
        click.echo(f"  evidence: {e['song']} ({e['singer']}) {e['n_matches']} matches, best {e['similarity']:.3f}: "
                   f"query {e['query_offset_s']:.1f} s ~ reference {e['reference_offset_s']:.1f} s")

"""Commands that change or inspect a home without retraining: enrol, remove, info."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from singerid.cli.common import (
    check_device_option, db_option, device_option, home_option, json_option, print_json, progress_mode,
)
from singerid.errors import ArtefactError, SingeridError


def _home(path: Path):
    from singerid.index.home import Home

    return Home.resolve(path)


@click.command("enrol")
@click.argument("singer")
@click.argument("songs", nargs=-1, required=True, type=click.Path(path_type=Path))
@home_option
@db_option
@click.option("--album", default=None, help="Album name to record for these songs.")
@click.option("--add-to-existing", is_flag=True,
              help="Add the songs to a singer already in the store (without it, an existing name is refused).")
@click.option("--retry-failed", is_flag=True,
              help="Try again songs that failed in an earlier run although they have not changed since.")
@device_option
@json_option
def enrol(singer: str, songs: tuple[Path, ...], home: Path, db_url: str | None, album: str | None,
          add_to_existing: bool, retry_failed: bool, device: str, as_json: bool) -> None:
    """Add a new SINGER from SONGS without retraining: stored, indexed, queryable at once.

    A bad song never stops the others: it is recorded (once per file) and the rest are enrolled;
    a rerun does not try it again while it is unchanged unless --retry-failed. Exit status (as
    embed-corpus and evaluate): 0 every song is stored; 1 some failed and the others were
    stored; 2 usage error.

    The unknown-singer threshold (query --reject-unknown) is recalibrated on the new index.
    A name already in the store is refused unless --add-to-existing says the songs are that
    singer's; "unknown" is refused (it is the answer for singers the index does not know).

    \b
    Example:
      singerid enrol "Nina Simone" feeling_good.mp3 sinnerman.flac --home H
      singerid enrol "Nina Simone" little_girl_blue.mp3 --home H --add-to-existing --json
    """
    import singerid

    device = check_device_option(device)
    where_home = _home(home)
    result = singerid.enrol(where_home, singer, songs, db=db_url, album=album, progress=progress_mode(),
                            add_to_existing=add_to_existing, device=device, retry_failed=retry_failed)
    if as_json:
        print_json(result.to_dict())
    else:
        for failure in result.failures:
            click.echo(f"failed: {failure.error}", err=True)
        where = (f"index now holds {result.index_vectors:,} vectors{_threshold(result)}"
                 if result.index_vectors is not None
                 else f"no index yet: run `singerid build-index --home {where_home.root}`")
        skipped = f" ({result.n_skipped} already stored, skipped)" if result.n_skipped else ""
        click.echo(f"enrolled {singer}: {result.n_songs} song(s), {result.n_blocks:,} blocks{skipped}; {where}")
    if result.failures:
        raise SingeridError(f"{len(result.failures)} of {len(songs)} song(s) could not be enrolled")


@click.command("remove")
@home_option
@db_option
@click.option("--singer", default=None, help="Remove this singer and all their songs.")
@click.option("--song", "songs", multiple=True, type=click.Path(path_type=Path), help="Remove this song (repeatable).")
@json_option
def remove(home: Path, db_url: str | None, singer: str | None, songs: tuple[Path, ...], as_json: bool) -> None:
    """Remove a singer or songs from the store and the index.

    The unknown-singer threshold (query --reject-unknown) is recalibrated on what is left.

    \b
    Example:
      singerid remove --singer "Nina Simone" --home H
      singerid remove --song feeling_good.mp3 --home H --json
    """
    import singerid

    if (singer is None) == (not songs):
        raise click.UsageError("give exactly one of --singer NAME or --song PATH (repeatable)")
    result = singerid.remove(_home(home), singer=singer, songs=songs, db=db_url)
    if as_json:
        print_json(result.to_dict())
        return
    where = (f"; index now holds {result.index_vectors:,} vectors{_threshold(result)}"
             if result.index_vectors is not None else "")
    click.echo(f"removed {result.n_songs} song(s), {result.n_blocks:,} blocks{where}")


def _threshold(summary: Any) -> str:
    return ("" if summary.unknown_threshold is None else
            f", unknown-singer threshold recalibrated to {summary.unknown_threshold:.3f}")


@click.command("info")
@home_option
@db_option
@click.option("--check", is_flag=True, help="Full consistency check (ids, checksums); exit 1 on any problem.")
@json_option
def info(home: Path, db_url: str | None, check: bool, as_json: bool) -> None:
    """Show what a home holds (singers, songs, blocks per split, model, index) and whether it agrees.

    \b
    Example:
      singerid info --home H
      singerid info --home H --check --json
    """
    import singerid

    data = singerid.info(_home(home), db=db_url, check=check).to_dict()
    if as_json:
        print_json(data)
    else:
        _print_info(data)
    if check and data["problems"]:
        raise ArtefactError(f"{len(data['problems'])} problem(s) in {data['home']}: {data['problems'][0]}")


def _search_setting(index: dict[str, Any]) -> str:
    """", nprobe 64" / ", ef 128" for approximate indexes (their default search setting), else ""."""
    if index.get("nprobe"):
        return f", nprobe {index['nprobe']}"
    return f", ef {index['ef_search']}" if index.get("ef_search") else ""


def _print_info(data: dict[str, Any]) -> None:
    click.echo(f"home: {data['home']}")
    model = data.get("model")
    if model:
        detail = model.get("error") or f"sha256 {model['sha256'][:12]}, d={model['embedding_dim']}, " \
                                       f"{model['singers_trained']} training singers"
        click.echo(f"model: {model['kind']} ({detail})")
        if "front_end_description" in model:
            recipe = ", ".join(f"{k} {v}" for k, v in model["training"].items())
            click.echo(f"hears: {model['front_end_description']}; trained with {recipe}")
    index = data.get("index")
    click.echo("index: " + ("none" if not index else
                            f"{index['type']} ({index['factory_key']}), {index['n_vectors']:,} vectors, d={index['dim']}, "
                            f"{index['size_bytes'] / 2**20:,.1f} MiB, back end {index['backend']}, "
                            f"built {index['built_at']}{_search_setting(index)}"))
    if data.get("pending_blocks"):
        click.echo(f"pending: {data['pending_blocks']:,} stored blocks not yet in the index "
                   "(the next enrol, embed-corpus or build-index adds them)")
    cal = data.get("unknown_calibration")
    if cal:
        try:
            click.echo(f"unknown-singer threshold: mean similarity {cal['min_similarity']:.3f} "
                       f"(EER {cal['equal_error_rate']:.1%} over {cal['n_songs']} reference songs)")
        except (KeyError, TypeError, ValueError):  # a damaged calibration.json: say so, show the rest
            error = cal.get("error") if isinstance(cal, dict) else None
            click.echo(f"unknown-singer threshold: unreadable calibration.json ({error or 'unexpected content'}); "
                       f"`singerid build-index --home {data['home']}` writes a new one")
    click.echo(f"{data['n_singers']:,} singers, {data['n_songs']:,} songs, {data['n_blocks']:,} blocks, "
               f"{data['failures']:,} recorded failures")
    splits = ("train", "val", "test")
    click.echo(f"  {'singer':<28} {'kind':<9}" + "".join(f"{s:>14}" for s in splits))
    for s in data["singers"]:
        cells = "".join(f"{s['splits'].get(sp, {}).get('n_songs', 0):>5} /{s['splits'].get(sp, {}).get('n_blocks', 0):>6}"
                        for sp in splits)
        click.echo(f"  {s['name']:<28} {s['kind']:<9}{cells}")
    click.echo("  (songs / blocks per split)")
    if data["problems"]:
        for p in data["problems"]:
            click.echo(f"problem: {p}", err=True)
    elif data.get("next_steps"):
        click.echo(f"not ready for queries yet: {data['next_steps']}")
    else:
        click.echo("consistent: model, store, index and manifest agree")

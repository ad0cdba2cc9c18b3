"""``singerid scan``: what a dataset directory holds and how it is split."""

from __future__ import annotations

from pathlib import Path

import click

from singerid.cli.common import (
    SPLIT_RULES, SUBSETS, dataset_option, json_option, print_json, resolve_split_rule, split_rule_option,
)


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@dataset_option
@split_rule_option
@click.option("--split", "which", type=click.Choice(SUBSETS + SPLIT_RULES), default=None,
              metavar="[train|val|test|all]", help="Also list the songs of this subset.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the computed split.")
@json_option
def scan(directory: Path, dataset: str, split_rule: str | None, which: str | None, seed: int,
         as_json: bool) -> None:
    """Show the layout, split rule and songs per singer and split of a dataset DIRECTORY.

    Only lists directories and reads list/split files; no audio is decoded.

    \b
    Example:
      singerid scan data/artist20
      singerid scan data/singer32 --dataset singer32 --split-rule lists --json
      singerid scan demo-corpus --split test
    """
    from singerid.datasets import load_dataset

    old_rule = which if which in SPLIT_RULES else None  # the old spelling: --split RULE
    rule = resolve_split_rule(split_rule, old_rule)
    subset = None if old_rule else which
    ds = load_dataset(directory, kind=dataset, seed=seed, split=rule)
    summary = ds.summary()
    songs = [{"singer": t.singer, "album": t.album, "song": t.song_id, "split": t.split, "path": str(t.path)}
             for t in ds.select(subset)] if subset else None
    if as_json:
        print_json(summary if songs is None else {**summary, "split": subset, "songs": songs})
        return
    click.echo(f"dataset: {ds.name}")
    click.echo(f"layout:  {ds.layout}")
    click.echo(f"split:   {ds.split_rule}")
    click.echo("")
    for line in format_counts(summary["counts"], summary["totals"]):
        click.echo(line)
    totals = summary["totals"]
    click.echo(f"\n{summary['n_singers']} singers, {summary['n_songs']} songs "
               f"(train {totals['train']}, val {totals['val']}, test {totals['test']})")
    if songs is not None:
        click.echo(f"\n{subset} songs:" if subset != "all" else "\nall songs:")
        for song in songs:
            click.echo(f"  {song['split']:<5}  {song['singer']}  {song['song']}")


def format_counts(counts: dict[str, dict[str, int]], totals: dict[str, int]) -> list[str]:
    """A plain-text table: one row per singer (train, val, test, all) and a total row."""
    width = max([len("singer"), len("total"), *map(len, counts)])
    cols = ("train", "val", "test", "all")
    head = f"{'singer':<{width}}  " + "  ".join(f"{c:>5}" for c in cols)
    rows = [head, "-" * len(head)]
    for singer, c in [*counts.items(), ("total", totals)]:
        values = (c["train"], c["val"], c["test"], c["train"] + c["val"] + c["test"])
        if singer == "total":
            rows.append("-" * len(head))
        rows.append(f"{singer:<{width}}  " + "  ".join(f"{v:>5}" for v in values))
    return rows

"""``singerid scan``: what a dataset directory holds and how it is split."""

from __future__ import annotations

from pathlib import Path

import click

from singerid.cli.common import dataset_option, json_option, print_json

SPLIT_CHOICES = ("album", "lists", "song")


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@dataset_option
@click.option("--split", "split_mode", type=click.Choice(SPLIT_CHOICES), default="album", show_default=True,
              help="album: the paper's protocol (artist20 4/1/1 albums per singer; singer32/60 8:1:1 or "
                   "their split files); lists: the dataset's own list/split files; song: 8:1:1 per singer "
                   "(albums leak).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the computed split.")
@json_option
def scan(directory: Path, dataset: str, split_mode: str, seed: int, as_json: bool) -> None:
    """Show the layout, split rule and songs per singer and split of a dataset DIRECTORY.

    Only lists directories and reads list/split files; no audio is decoded.

    \b
    Example:
      singerid scan data/artist20
      singerid scan data/singer32 --dataset singer32 --split lists --json
    """
    from singerid.datasets import load_dataset

    ds = load_dataset(directory, kind=dataset, seed=seed, split=split_mode)
    summary = ds.summary()
    if as_json:
        print_json(summary)
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

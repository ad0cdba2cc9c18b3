"""Deterministic train / val / test splits: pure functions of (items, seed, singer).

Shared by the dataset readers and the synthetic corpus generator, so that the lists the
generator writes and the split a reader computes for the same seed are the same.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterable, Sequence

from singerid import constants as C
from singerid.records import Split


def _rng(seed: int, key: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def split_counts(n: int, ratio: Sequence[int]) -> tuple[int, int, int]:
    """(train, val, test) counts for ``n`` items in proportion ``ratio`` (e.g. 4:1:1, 8:1:1).

    Val and test get at least one item each once there are 3 or more items; train keeps
    the rest. 6 albums at 4:1:1 -> (4, 1, 1); 70 songs at 8:1:1 -> (56, 7, 7).
    """
    if n < 3:
        return (n, 0, 0)
    total = sum(ratio)
    val = max(1, round(n * ratio[1] / total))
    test = max(1, round(n * ratio[2] / total))
    return (n - val - test, val, test)


def assign_split(items: Sequence[str], *, seed: int, key: str,
                 ratio: Sequence[int] = C.ARTIST20_ALBUM_SPLIT) -> dict[str, Split]:
    """Shuffle ``items`` (album or song names of one singer, named by ``key``) with a seed
    derived from (seed, key) and assign the first to train, then val, then test.

    Deterministic for (sorted items, seed, key); independent of other singers.
    """
    order = sorted(set(items))
    _rng(seed, key).shuffle(order)
    n_train, n_val, _ = split_counts(len(order), ratio)
    out: dict[str, Split] = {}
    for i, item in enumerate(order):
        out[item] = "train" if i < n_train else ("val" if i < n_train + n_val else "test")
    return out


def split_shape(n_units: Iterable[int], ratio: Sequence[int]) -> str:
    """How a per-singer split of ``ratio`` really falls for singers with these unit counts.

    All alike: "4/1/1" (6 albums at 4:1:1) or "1/1/1" (3 albums); mixed: the shapes, most
    common first, with how many singers have each: "4/1/1 for 12 singers, 2/1/1 for 1 singer".
    """
    shapes = Counter("/".join(map(str, split_counts(n, ratio))) for n in n_units)
    if len(shapes) == 1:
        return next(iter(shapes))
    return ", ".join(f"{shape} for {k} singer{'s' if k != 1 else ''}" for shape, k in shapes.most_common())


def album_rule(n_albums: Sequence[int], *, seed: int, ratio: Sequence[int], why: str) -> str:
    """The ``split_rule`` text of an album split, saying what it really does for this corpus.

    ``n_albums``: albums of each singer; ``why``: where the rule comes from ("paper"). When the
    counts give the ratio's own shape: "album split 4/1/1 per singer (paper), seed 0"; otherwise
    the shape they give: "album split 1/1/1 per singer (paper; 4/1/1 needs 6 albums, here 3
    each), seed 0".
    """
    nominal = "/".join(map(str, ratio))
    counts = sorted(set(n_albums))
    if not counts:
        return f"album split {nominal} per singer ({why}), seed {seed}"
    shape = split_shape(n_albums, ratio)
    if shape == nominal:
        return f"album split {shape} per singer ({why}), seed {seed}"
    have = f"{counts[0]} each" if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
    head = f"album split {shape} per singer" if len(counts) == 1 else f"album split per singer: {shape}"
    return f"{head} ({why}; {nominal} needs {sum(ratio)} albums, here {have}), seed {seed}"

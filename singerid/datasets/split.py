"""Deterministic train / val / test splits: pure functions of (items, seed, singer).

Shared by the dataset readers and the synthetic corpus generator, so that the lists the
generator writes and the split a reader computes for the same seed are the same.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

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

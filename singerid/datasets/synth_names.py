"""Made-up album and song names in artist20's spelling (``Silver_Harbour``, ``Midnight_Train``)."""

from __future__ import annotations

import numpy as np

ADJECTIVES = (
    "Silver", "Broken", "Golden", "Quiet", "Electric", "Lonely", "Crimson", "Velvet", "Hollow",
    "Northern", "Restless", "Paper", "Wild", "Neon", "Distant", "Burning", "Frozen", "Secret",
    "Painted", "Falling", "Summer", "Midnight", "Stolen", "Open", "Blue", "Second", "Little",
)
NOUNS = (
    "Harbour", "Train", "Garden", "Horizon", "River", "Letters", "Machine", "Heart", "Highway",
    "Stars", "Window", "Kingdom", "Radio", "Ocean", "Mirror", "Satellite", "Thunder", "Shadows",
    "Parade", "Fire", "Island", "Rain", "Station", "Dreams", "Avenue", "Lights", "Echoes",
)


def album_names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct album names like ``Silver_Harbour`` (n <= 700)."""
    return _distinct(rng, n)


def song_titles(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct song titles like ``Falling_Stars`` (n <= 700)."""
    return _distinct(rng, n)


def _distinct(rng: np.random.Generator, n: int) -> list[str]:
    pairs = rng.permutation(len(ADJECTIVES) * len(NOUNS))[:n]
    return [f"{ADJECTIVES[int(p) // len(NOUNS)]}_{NOUNS[int(p) % len(NOUNS)]}" for p in pairs]

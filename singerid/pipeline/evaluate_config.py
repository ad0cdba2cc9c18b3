"""What ``singerid evaluate`` is asked to do: the datasets (``--data KEY=PATH``) and the
run configuration, validated on construction (ParameterError quoting the bad value)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from singerid import constants as C
from singerid.config import FeatureConfig, IndexConfig, TrainConfig
from singerid.datasets import KINDS, SPLIT_MODES
from singerid.errors import ParameterError
from singerid.embedder.recipes import RECIPES, Recipe
from singerid.evaluation import K_VALUES, METHODS
from singerid.evaluation.results import ABLATION_METHODS, DEFAULT_METHODS, PAPER_DATASETS

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")  # the rule of DatasetResult.key (report.json keys)
# The recipe (singerid.embedder.recipes) whose trained embedder each method needs; None = no embedder of ours.
METHOD_RECIPE: dict[str, str | None] = {
    "crnn": "crnn", "attcrnn": "attcrnn", "attcrnn-knn": "attcrnn", "crnn-knn": "crnn",
    "voice": "voice", "voice-knn": "voice", "voice-knn-clean": "voice", "ge2e-knn": None, "mfcc-logreg": None, "mfcc-logreg-clean": None,
    **{m: m.removesuffix("-knn") for m in ABLATION_METHODS},
}
FEATURES_DIR = "features"  # under OUT/cache: the log-mel and separated-stem caches
GE2E_INPUT = "vocals"  # ge2e-knn hears what our voice embedder hears (the issue: "on the same input")


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """One ``--data KEY=PATH``: the report key and where the data is.

    The key names the report column (artist20 / singer32 / singer60 are the paper's A20 /
    S32 / S60; any other key, e.g. "synthetic", gets a table of its own) and, when it is a
    reader kind, which reader to use (otherwise the layout is detected).
    """

    key: str
    root: Path

    @property
    def kind(self) -> str:
        return self.key if self.key in KINDS else "auto"

    @property
    def is_paper_dataset(self) -> bool:
        return self.key in PAPER_DATASETS

    @classmethod
    def parse(cls, text: str) -> DatasetSpec:
        """``"artist20=/data/artist20"`` -> DatasetSpec. Raises ParameterError quoting ``text``."""
        key, sep, path = text.partition("=")
        key = key.strip()
        if not sep or not key or not path.strip():
            raise ParameterError(f"--data {text!r}: expected KEY=PATH, e.g. artist20=/data/artist20")
        if not KEY_PATTERN.match(key):
            raise ParameterError(f"--data {text!r}: key {key!r} must be lower-case letters, digits, "
                                 "'-', '_' or '.'")
        return cls(key, Path(path.strip()).expanduser())


@dataclass(frozen=True, slots=True)
class EvaluateConfig:
    """What ``evaluate`` runs. Defaults: the paper's protocol (all methods, seeds 0, 21, 42, K = 11)."""

    methods: tuple[str, ...] = DEFAULT_METHODS  # report rows; ABLATION_METHODS too with --ablation
    seeds: tuple[int, ...] = C.BASELINE_SEEDS  # CRNN baseline's repeats; each seed = split + training seed
    split: str = "album"  # reader split mode: album (paper protocol), lists or song
    k: int = C.K_NEIGHBOURS  # neighbours of the headline KNN numbers (paper §3.3)
    feature: FeatureConfig = FeatureConfig()
    train: TrainConfig = TrainConfig()  # its seed is replaced by each run's seed
    index: IndexConfig = IndexConfig()
    precision: str = "fp32"  # training forward pass: fp32, or bf16 autocast (singerid.embedder.train)
    reuse_home: Path | None = None  # a home whose matching models are copied instead of retrained
    batch_size: int = 64  # blocks per forward pass at inference (fastest on 2 CPU cores, as embed-corpus)
    workers: int = 1  # processes computing the baseline's MFCCs
    device: str = "cpu"  # torch device of the embedders' and GE2E's forward passes ("cpu", "cuda", "cuda:1")

    def __post_init__(self) -> None:
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise ParameterError(f"unknown method {bad[0] if bad else ''!r}; "
                                 f"use a comma list of {', '.join(METHODS)}")
        if len(set(self.methods)) != len(self.methods):
            raise ParameterError(f"methods must be distinct, got {','.join(self.methods)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            raise ParameterError(f"seeds must be distinct non-negative integers, got {list(self.seeds)}")
        if self.split not in SPLIT_MODES:
            raise ParameterError(f"unknown split rule {self.split!r}: use one of {', '.join(SPLIT_MODES)}")
        if self.precision not in ("fp32", "bf16"):
            raise ParameterError(f"precision must be fp32 or bf16, got {self.precision!r}")
        if self.k < 1:
            raise ParameterError(f"k must be >= 1, got {self.k}")
        if self.batch_size < 1 or self.workers < 1:
            raise ParameterError(f"batch_size and workers must be >= 1, got {self.batch_size} and {self.workers}")

    @property
    def recipes(self) -> tuple[Recipe, ...]:
        """The trained embedders the methods need (one per model name), in recipe order."""
        needed = {RECIPES[r].model_name for m in self.methods if (r := METHOD_RECIPE[m]) is not None}
        return tuple(r for r in RECIPES.values() if r.name in needed)

    @property
    def model_names(self) -> tuple[str, ...]:
        """Names of the embedders the methods need (= their run homes), in recipe order."""
        return tuple(r.name for r in self.recipes)

    @property
    def search_k(self) -> int:
        """Neighbours fetched per test block: enough for the headline K and the whole K grid."""
        return max(*K_VALUES, self.k)

    def to_dict(self) -> dict[str, Any]:
        return {"methods": list(self.methods), "seeds": list(self.seeds), "split": self.split, "k": self.k,
                "k_values": list(K_VALUES), "feature": self.feature.to_dict(),
                "train": {k: v for k, v in self.train.to_dict().items() if k != "seed"}, "precision": self.precision,
                "index": self.index.to_dict(), "reuse_home": str(self.reuse_home) if self.reuse_home else None,
                "device": self.device}

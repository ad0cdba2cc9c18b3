"""Named training recipes: the paper's two embedders, our voice embedder, and its ablations.

A recipe fixes everything that makes one embedder differ from another: network and head,
front end (mix or separated vocals), the training levers, and the back end of the index built
from it. The paper's recipes (``crnn``, ``attcrnn``) keep every lever off, so their Table-1
rows stay a faithful reproduction; ``voice`` is our best measured configuration; each
``voice-no-*`` / ``voice-with-*`` recipe flips one lever of ``voice`` for the ablation table.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from singerid.config import ModelConfig, TrainConfig
from singerid.errors import ParameterError
from singerid.frontend import FrontEndConfig

ADVERSARY_WEIGHT = 0.1  # ours: weight of the album adversary's loss when that lever is on


@dataclass(frozen=True, slots=True)
class Recipe:
    """How one embedder is made and searched."""

    name: str  # also the name of its run home / model folder in evaluate
    kind: str = "attcrnn"  # network: "crnn" (baseline) or "attcrnn" (paper)
    head: str = "softmax"  # stage-1 head: "softmax" (paper) or "aam" (ours)
    input: str = "mix"  # front end: "mix" (paper) or "vocals" (separated, ours)
    remix: bool = False  # shuffle-and-remix training (ours)
    gain_tilt: bool = False  # gain and EQ augmentation (ours)
    album_adversary: float = 0.0  # album adversary weight (ours); 0 = off
    backend: str = "none"  # index back end: "none" (paper) or "lda-wccn" (ours)
    label: str = ""  # human name for reports
    shares_model_of: str = ""  # another recipe whose trained model this one reuses (differs in back end only)

    def model_config(self) -> ModelConfig:
        return ModelConfig(kind=self.kind, head=self.head)  # type: ignore[arg-type]

    def front_end(self) -> FrontEndConfig:
        return FrontEndConfig(input=self.input)

    def train_config(self, base: TrainConfig) -> TrainConfig:
        """``base`` (epochs, batch, lr, seed...) with this recipe's levers."""
        return dataclasses.replace(base, remix=self.remix, gain_tilt=self.gain_tilt,
                                   album_adversary=self.album_adversary)

    @property
    def model_name(self) -> str:
        """The trained model (and run home) this recipe uses."""
        return self.shares_model_of or self.name

    def levers(self) -> dict[str, object]:
        """What is on, for reports: {lever: value}."""
        return {"input": self.input, "remix": self.remix, "gain_tilt": self.gain_tilt,
                "album_adversary": self.album_adversary, "head": self.head, "backend": self.backend}


_VOICE = Recipe(name="voice", kind="attcrnn", head="aam", input="vocals", remix=True, gain_tilt=True,
                album_adversary=0.0, backend="lda-wccn", label="Voice-AttCRNN (ours)")

RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe(name="crnn", kind="crnn", label="CRNN (paper baseline)"),
    Recipe(name="attcrnn", kind="attcrnn", label="Attention-CRNN (paper)"),
    _VOICE,
    dataclasses.replace(_VOICE, name="voice-no-separation", input="mix", label="- separation (mix input)"),
    dataclasses.replace(_VOICE, name="voice-no-remix", remix=False, label="- shuffle-and-remix"),
    dataclasses.replace(_VOICE, name="voice-no-gain-tilt", gain_tilt=False, label="- gain/tilt"),
    dataclasses.replace(_VOICE, name="voice-softmax-head", head="softmax", label="- AAM (softmax head)"),
    dataclasses.replace(_VOICE, name="voice-no-backend", backend="none", label="- LDA/WCCN back end",
                        shares_model_of="voice"),
    dataclasses.replace(_VOICE, name="voice-with-adversary", album_adversary=ADVERSARY_WEIGHT,
                        label="+ album adversary"),
)}
ABLATION_RECIPES: tuple[str, ...] = tuple(name for name in RECIPES if name.startswith("voice-"))


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; ParameterError listing the known ones otherwise."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ParameterError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}") from None

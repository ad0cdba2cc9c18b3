"""Slow: on an album split, an embedder trained on separated vocals beats the same training on the mix.

The synthetic corpus gives each album its own accompaniment and production, independent of
the singer. The same recipe (Attention-CRNN, AAM head, remix, gain/tilt, LDA/WCCN, KNN) is
trained twice per seed, once on the mix and once on the Spleeter-separated vocals; the test
albums were never heard in training.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from singerid.cli import cli
from singerid.datasets.synth import generate_corpus
from singerid.datasets.synth_spec import CorpusSpec

SPEC = CorpusSpec(singers=6, albums=5, songs_per_album=2, seconds=12.0, seed=3, audio_format="flac")
SEEDS = "0,21"
MARGIN = 0.15  # ours: mean song-accuracy gain asked of separation (measured: see the closing assertion)


@pytest.mark.slow
def test_separated_vocals_beat_the_mix_on_unseen_albums(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    generate_corpus(corpus, SPEC, workers=2)
    out = tmp_path / "eval"
    result = CliRunner().invoke(cli, [
        "evaluate", "--data", f"synthetic={corpus}", "--methods", "voice-knn,voice-no-separation-knn",
        "--seeds", SEEDS, "--epochs", "12", "--patience", "12", "--precision", "bf16", "--threads", "2",
        "--workers", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    methods = json.loads((out / "report.json").read_text())["datasets"]["synthetic"]["methods"]
    vocals = methods["voice-knn"]["song"]["accuracy"]["mean"]
    mix = methods["voice-no-separation-knn"]["song"]["accuracy"]["mean"]
    assert vocals >= mix + MARGIN, (vocals, mix)

"""report.md: the paper's Table-1 layout with its published numbers beside ours; the terminal summary."""

from __future__ import annotations

import re

import pytest

from report_data import ARTIST20, dataset, multi_dataset_results
from singerid.evaluation import EvaluationResults, format_summary
from singerid.evaluation.paper import TABLE1
from singerid.evaluation.report_md import render_markdown
from singerid.evaluation.summary import summarise

TABLE1_HEADER = ("| Method | Source | Accuracy A20 | Accuracy S32 | Accuracy S60 | Precision A20 | Precision S32 "
                 "| Precision S60 | Recall A20 | Recall S32 | Recall S60 | F1 A20 | F1 S32 | F1 S60 |")


@pytest.fixture(scope="module")
def results() -> EvaluationResults:
    return multi_dataset_results()


@pytest.fixture(scope="module")
def md(results) -> str:
    return render_markdown(results, summarise(results))


def _section(md: str, title: str) -> str:
    start = md.index(title)
    end = md.find("\n## ", start + 1)
    return md[start:] if end < 0 else md[start:end]


def _rows(section: str) -> dict[tuple[str, str], list[str]]:
    rows = {}
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| Method") and not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[(cells[0], cells[1])] = cells[2:]
    return rows


def test_table1_has_the_papers_column_groups_and_rows(md):
    table1 = _section(md, "## Table 1 — song level")
    assert TABLE1_HEADER in table1
    rows = _rows(table1)
    labels = [key for key in rows]
    assert labels[:8] == [("i-vector", "paper"), ("SVS-SID", "paper"), ("CRNN", "ours"), ("CRNN", "paper"),
                          ("Attention-CRNN", "ours"), ("Attention-CRNN", "paper"),
                          ("Attention-CRNN-KNN", "ours"), ("Attention-CRNN-KNN", "paper")]
    assert ("CRNN-KNN †", "ours") in rows and ("MFCC + LogReg †", "ours") in rows


def test_table1_shows_the_papers_published_numbers(md):
    rows = _rows(_section(md, "## Table 1 — song level"))
    assert rows[("CRNN", "paper")] == "0.94 0.69 0.57 0.93 0.72 0.57 0.93 0.69 0.56 0.93 0.68 0.51".split()
    assert rows[("Attention-CRNN", "paper")] == "0.95 0.72 0.63 0.96 0.75 0.62 0.95 0.69 0.62 0.95 0.69 0.58".split()
    assert rows[("Attention-CRNN-KNN", "paper")] == "0.99 0.74 – 0.99 0.76 – 0.99 0.70 – 0.99 0.71 –".split()
    assert rows[("i-vector", "paper")] == "0.85 – – 0.86 – – 0.86 – – 0.85 – –".split()
    assert rows[("SVS-SID", "paper")] == ["0.90"] + ["–"] * 11
    assert {row.label for row in TABLE1} == {"i-vector", "SVS-SID", "CRNN", "Attention-CRNN", "Attention-CRNN-KNN"}


def test_our_cells_are_mean_and_std_with_dashes_for_datasets_not_run(md, results):
    rows = _rows(_section(md, "## Table 1 — song level"))
    ours = rows[("Attention-CRNN-KNN", "ours")]
    a20 = summarise(results)[0].method("attcrnn-knn").song
    assert ours[0] == f"{a20.accuracy.mean:.2f} ± {a20.accuracy.std:.2f}"  # Accuracy A20
    assert ours[9] == f"{a20.f1.mean:.2f} ± {a20.f1.std:.2f}"  # F1 A20
    assert ours[1] == "–" and ours[2] == "–"  # singer32 failed, singer60 not run
    assert re.fullmatch(r"0\.\d\d ± 0\.\d\d", ours[3])


def test_every_table_caption_states_level_split_and_seeds(md):
    for title in ("## Table 1 — song level", "## Table 2 — block level"):
        caption = _section(md, title).splitlines()[2]
        level = title.split("— ")[1]
        assert caption.startswith(f"*{level.capitalize()}")
        assert "artist20: album split 4/1/1 per artist (paper §3.1), seeds 0, 21, 42" in caption
        assert "singer32: 8:1:1 per singer (paper §3.1), seeds 0, 21, 42 (FAILED, see notes)" in caption
        assert "singer60: not run" in caption
    for caption in re.findall(r"^\*.*\*$", md, flags=re.M):
        assert "seeds" in caption or "seconds" in caption or "songs and 1-s blocks" in caption, caption


def test_block_table_has_no_block_level_for_mfcc_and_the_papers_fig3_number(md):
    rows = _rows(_section(md, "## Table 2 — block level"))
    assert rows[("MFCC + LogReg †", "ours")][0] == "n/a"
    assert rows[("Attention-CRNN-KNN (Fig. 3)", "paper")][0] == "0.85"
    assert ("CRNN", "paper") not in rows  # the paper gives no block-level table


def test_synthetic_corpus_gets_its_own_table(md):
    table = _section(md, "## Table 1b — song level, other datasets (synthetic)")
    assert "| Method | Source | Accuracy synthetic | Precision synthetic | Recall synthetic | F1 synthetic |" in table
    assert "synthetic: album split 4/1/1 per singer (synthetic corpus), seeds 0, 1" in table
    assert "paper" not in "".join(k[1] for k in _rows(table))


def test_notes_explain_the_split_and_say_plainly_who_beats_the_baseline(md):
    notes = _section(md, "## How to read this")
    assert "song split" in notes and "album split" in notes and "0.6 song-level F1" in notes
    assert "0.74–0.83" in notes
    verdicts = _section(md, "## Do the deep models beat the simple baseline?")
    assert re.search(r"artist20, song-level macro F1 against the mfcc-logreg baseline: CRNN (beats|does NOT beat) it",
                     verdicts)
    assert "synthetic, song-level macro F1" in verdicts
    assert "- singer32: dataset failed: singer32: /data/singer32 matches no known layout (no results)." in md


def test_a_deep_model_below_the_baseline_is_called_out():
    ds = dataset("artist20", ARTIST20[:4], (0,), methods=("crnn", "mfcc-logreg"), songs_per_singer=6)
    md = render_markdown(EvaluationResults(datasets=(ds,)), summaries := summarise(EvaluationResults(datasets=(ds,))))
    crnn, base = summaries[0].method("crnn").song.f1.mean, summaries[0].method("mfcc-logreg").song.f1.mean
    word = "beats" if crnn > base else "does NOT beat"
    assert f"CRNN {word} it ({crnn:.2f} vs {base:.2f})" in md


def test_detail_sections_accuracy_vs_k_per_singer_counts_timings(md):
    k = _section(md, "## Accuracy vs K")
    assert "| Method | Level | K 1 | K 3 | K 5 | K 7 | K 11 | K 15 | K 21 | K 31 | K 51 |" in k
    a20 = k[k.index("### Accuracy vs K — artist20"):k.index("### Accuracy vs K — synthetic")]
    assert "| Attention-CRNN-KNN | song | 0.51 ± 0.01 | 0.56 ± 0.01 |" in a20  # 0.5 + {0, 1, 2} / 100
    assert "| CRNN-KNN | block | 0.30 |" not in a20 and "| CRNN-KNN | block | 0.30 ± 0.00 |" in a20
    singers = _section(md, "## Per-singer F1 (song level)")
    assert "| Singer | Support | F1 CRNN | F1 Attention-CRNN |" in singers
    assert "| aerosmith | 9 |" in singers  # 3 test songs x 3 seeds
    counts = _section(md, "## Counts")
    assert "| Seed | Train songs | Train blocks | Val songs | Val blocks | Test songs | Test blocks |" in counts
    assert "| 21 | 240 | 48,000 | 60 | 12,000 | 60 | 480 |" in counts
    timings = _section(md, "## Timings")
    assert "| Stage | Seed all | Seed 0 | Seed 21 | Seed 42 | Total |" in timings
    assert "| train attcrnn | – | 12.5 | 33.5 | 54.5 | 100.5 |" in timings


def test_format_summary_is_a_compact_table_per_dataset(results):
    text = format_summary(results)
    lines = text.splitlines()
    assert lines[0] == "artist20: album split 4/1/1 per artist (paper §3.1); seeds 0,21,42"
    assert lines[1].split() == ["method", "song", "acc", "song", "P", "song", "R", "song", "F1",
                                "block", "acc", "block", "F1"]
    assert lines[2].lstrip().startswith("CRNN ")
    assert "  dataset failed: singer32: /data/singer32 matches no known layout" in lines
    mfcc = next(line for line in lines if "MFCC" in line)
    assert mfcc.split()[-2:] == ["n/a", "n/a"]
    assert max(len(line) for line in lines) < 120


def test_a_song_split_on_artist20_is_named_in_the_notes_and_captions():
    ds = dataset("artist20", ARTIST20[:4], (0,), methods=("attcrnn",), split_rule="song split 80/10/10 (explicit --split song)")
    results = EvaluationResults(datasets=(ds,))
    md = render_markdown(results, summarise(results))
    assert "This run used a song split on artist20 too" in md
    assert "artist20: song split 80/10/10 (explicit --split song), seeds 0" in md
    assert "Ours use the album split" not in md


def test_without_artist20_the_notes_do_not_claim_an_artist20_split():
    ds = dataset("synthetic", ARTIST20[:4], (0,), methods=("attcrnn",))
    results = EvaluationResults(datasets=(ds,))
    md = render_markdown(results, summarise(results))
    assert "artist20 was not run here" in md and "Ours use the album split" not in md
    assert "- synthetic: no mfcc-logreg baseline was run" in md

"""report.md: the paper's Table-1 layout with its published numbers beside ours; the terminal summary."""

from __future__ import annotations

import re

import pytest

from report_data import ABLATIONS_RUN, ARTIST20, ablation_dataset, dataset, multi_dataset_results
from singerid.evaluation import EvaluationResults, format_summary
from singerid.evaluation.paper import TABLE1
from singerid.evaluation.report_md import ABLATION_SECTION, render_markdown
from singerid.evaluation.results import ABLATION_METHODS
from singerid.evaluation.summary import summarise, summarise_dataset
from singerid.evaluation.tables import METHOD_LABELS, ablation_table, fmt, fmt_delta

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


def test_format_summary_is_a_compact_table_per_dataset():
    text = format_summary(multi_dataset_results(voice=False))  # the paper's methods and the baselines
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
    singer32 = dataset("singer32", ARTIST20[:4], (0,), methods=("attcrnn",), split_rule="8:1:1 per singer")
    results = EvaluationResults(datasets=(ds, singer32))
    md = render_markdown(results, summarise(results))
    assert "artist20 was not run here" in md and "Ours use the album split" not in md
    assert "- synthetic: no mfcc-logreg baseline was run" in md


def test_without_a_paper_dataset_the_paper_tables_go_and_our_numbers_lead():
    ds = dataset("synthetic", ARTIST20[:4], (0, 1), methods=("attcrnn", "attcrnn-knn", "mfcc-logreg"))
    results = EvaluationResults(datasets=(ds,))
    md = render_markdown(results, summarise(results))
    assert "## Table 1" not in md and "## Table 2" not in md and "A20" not in md and "| paper |" not in md
    titles = re.findall(r"^## (.*)$", md, flags=re.M)
    assert titles[:4] == ["Song level — synthetic", "Block level — synthetic",
                          "Do the deep models beat the simple baseline?", "How to read this"]
    rows = _rows(_section(md, "## Song level — synthetic"))
    a = summarise(results)[0].method("attcrnn").song.accuracy
    assert rows[("Attention-CRNN", "ours")][0] == fmt(a) and ("MFCC + LogReg †", "ours") in rows
    assert [label for label, _ in rows] == ["Attention-CRNN", "Attention-CRNN-KNN", "MFCC + LogReg †"]  # ran only
    notes = _section(md, "## How to read this")
    assert "No paper dataset (artist20, singer32, singer60) ran, so the paper's Table 1 is not shown" in notes
    assert "artist20" not in notes.replace("(artist20, singer32, singer60)", "")  # no paper comparisons


def test_with_a_paper_dataset_table1_still_comes_first():
    titles = re.findall(r"^## (.*)$", render_markdown(r := multi_dataset_results(), summarise(r)), flags=re.M)
    assert titles[:6] == ["Failed datasets", "Table 1 — song level, paper datasets (A20 / S32 / S60)",
                          "Table 1b — song level, other datasets (synthetic)",
                          "Table 2 — block level, paper datasets (A20 / S32 / S60)",
                          "Table 2b — block level, other datasets (synthetic)",
                          "Do the deep models beat the simple baseline?"]


def test_per_song_table_shows_the_songs_most_methods_got_wrong_with_links_to_the_csvs(md, results):
    section = _section(md, "## Per-song predictions")
    a20 = section[section.index("### Per-song predictions — artist20"):section.index("### Per-song predictions — synthetic")]
    assert "- seed 21: [CRNN](predictions/artist20/seed-21/crnn.csv) · [Attention-CRNN](" in a20
    assert "[MFCC + LogReg](predictions/artist20/seed-42/mfcc-logreg.csv)" in a20
    assert "*artist20, song level: 50 of 180 test songs (over seeds 0, 21, 42), those most methods got wrong first" in a20
    header = next(line for line in a20.splitlines() if line.startswith("| Seed"))
    assert header == ("| Seed | Song | True singer | Wrong | Predicted CRNN | Predicted Attention-CRNN | "
                      "Predicted Attention-CRNN-KNN | Predicted CRNN-KNN | Predicted MFCC + LogReg |")
    body = [[c.strip() for c in line.strip("|").split(" | ")] for line in a20.splitlines()
            if line.startswith("| ") and not line.startswith(("| Seed", "| ---"))]
    assert len(body) == 50
    wrong = [int(row[3]) for row in body]
    assert wrong == sorted(wrong, reverse=True) and wrong[0] >= 1
    ds = results.dataset("artist20")
    seed, song = int(body[0][0]), body[0][1]
    for method, cell in zip(("crnn", "attcrnn", "attcrnn-knn", "crnn-knn", "mfcc-logreg"), body[0][4:]):
        run = next(r for r in ds.runs_of(method) if r.seed == seed)
        i = run.songs.song_ids.index(song)
        truth, pred = run.song.y_true[i], run.song.y_pred[i]
        assert body[0][2] == truth and cell == ("✓" if pred == truth else pred)
    assert sum(cell != "✓" for cell in body[0][4:]) == wrong[0]
    synthetic = section[section.index("### Per-song predictions — synthetic"):]
    assert "Voice-AttCRNN-KNN (ours)" in synthetic and "- separation" not in synthetic.split("| Seed")[1]


def test_accuracy_vs_k_caption_gives_the_sample_sizes(md):
    k = _section(md, "## Accuracy vs K")
    assert "(paper §3.1), seeds 0, 21, 42; n = 60 test songs / 480 test blocks per seed.*" in k


# --- our voice embedder: extra rows, the ablation table, the verdict against MFCC and GE2E ------------------

VOICE_EXTRAS = ("Voice-AttCRNN (ours, softmax) †", "Voice-AttCRNN-KNN (ours) †", "GE2E-KNN (Resemblyzer) †",
                "Voice-KNN, clean-stem queries †")
EXACT = {"voice-knn": {0: 16, 1: 18}, "voice-no-separation-knn": {0: 12, 1: 10},
         "voice-no-remix-knn": {0: 17, 1: 19}, "voice-with-adversary-knn": {0: 16}}  # songs right of 20


def test_table1_has_no_all_dash_rows_for_methods_that_did_not_run(md):
    for title in ("## Table 1 — song level", "## Table 2 — block level"):
        rows = _rows(_section(md, title))
        for label in VOICE_EXTRAS:  # the voice methods ran on the synthetic corpus only
            assert (label, "ours") not in rows
        for (label, source), cells in rows.items():
            if label.endswith(" †"):
                assert set(cells) != {"–"}, label
        assert ("CRNN-KNN †", "ours") in rows and ("MFCC + LogReg †", "ours") in rows


def test_paper_rows_stay_when_nothing_of_the_paper_ran():
    ds = dataset("artist20", ARTIST20[:4], (0,), methods=("voice-knn",))
    rows = _rows(_section(render_markdown(EvaluationResults(datasets=(ds,)),
                                          summarise(EvaluationResults(datasets=(ds,)))), "## Table 1 — song level"))
    assert list(rows)[:8] == [("i-vector", "paper"), ("SVS-SID", "paper"), ("CRNN", "ours"), ("CRNN", "paper"),
                              ("Attention-CRNN", "ours"), ("Attention-CRNN", "paper"),
                              ("Attention-CRNN-KNN", "ours"), ("Attention-CRNN-KNN", "paper")]
    assert rows[("CRNN", "ours")] == ["–"] * 12  # the paper's own rows are kept, run or not
    assert [key for key in rows if key[0].endswith(" †")] == [("Voice-AttCRNN-KNN (ours) †", "ours")]


def test_other_datasets_table_has_the_voice_rows_but_never_the_ablations(md):
    for title in ("## Table 1b — song level", "## Table 2b — block level"):
        rows = _rows(_section(md, title))
        for label in VOICE_EXTRAS:
            assert (label, "ours") in rows
        for method in ABLATION_METHODS:
            assert not any(label.startswith(METHOD_LABELS[method]) for label, _ in rows), method


def test_ablation_table_rows_and_signed_deltas_are_exact():
    s = summarise_dataset(ablation_dataset(EXACT))
    table = ablation_table(s)
    assert table.columns == ("Lever flipped", "Method", "accuracy", "F1", "accuracy", "Seeds", "Δ song accuracy")
    assert table.groups == (("", 2), ("Song", 2), ("Block", 1), ("", 2))
    assert [row[:3] for row in table.rows] == [
        ("Voice-AttCRNN-KNN (all levers)", "voice-knn", "0.85 ± 0.05"),
        ("- separation (mix input)", "voice-no-separation-knn", "0.55 ± 0.05"),
        ("- shuffle-and-remix", "voice-no-remix-knn", "0.90 ± 0.05"),
        ("+ album adversary", "voice-with-adversary-knn", "0.80"),  # one seed: the value alone
    ]
    assert [row[5:] for row in table.rows] == [("2", "ref."), ("2", "-0.30"), ("2", "+0.05"), ("1", "+0.00")]
    for row in table.rows:  # song F1 and block accuracy as the other tables format them
        m = s.method(row[1])
        assert row[3:5] == (fmt(m.song.f1), fmt(m.block.accuracy))
    assert table.caption.startswith("synthetic, song level (majority vote of 1-s blocks) and block level: "
                                    "each row after the first flips one lever of the full configuration")
    assert table.caption.endswith("album split 4/1/1 per singer (synthetic corpus), seeds 0, 1.")


def test_ablation_deltas_are_paired_over_the_seeds_both_ran():
    s = summarise_dataset(ablation_dataset({"voice-knn": {1: 18}, "voice-no-remix-knn": {0: 10, 1: 14}}))
    assert [row[-1] for row in ablation_table(s).rows] == ["ref.", "-0.20"]  # seed 1 only: 0.70 - 0.90


def test_ablation_without_the_full_configuration_shows_dashes_not_deltas():
    s = summarise_dataset(ablation_dataset({"voice-no-backend-knn": {0: 10, 1: 12}}))
    f1 = fmt(s.method("voice-no-backend-knn").song.f1)
    assert ablation_table(s).rows == (
        ("Voice-AttCRNN-KNN (all levers)", "voice-knn", "–", "–", "–", "–", "ref."),
        ("- LDA/WCCN back end", "voice-no-backend-knn", "0.55 ± 0.05", f1, "0.55 ± 0.05", "2", "–"))


def test_no_ablation_table_where_no_ablation_method_ran(md):
    assert ablation_table(summarise_dataset(ablation_dataset({"voice-knn": {0: 16, 1: 18}}))) is None
    assert md.count("### Ablation — ") == 1 and "### Ablation — artist20" not in md
    md_old = render_markdown(results := multi_dataset_results(voice=False), summarise(results))
    assert ABLATION_SECTION not in md_old


def test_markdown_shows_the_ablation_table_after_the_main_tables(md, results):
    assert md.index("## Table 2b — block level") < md.index(f"## {ABLATION_SECTION}") < md.index("## Accuracy vs K")
    section = _section(md, f"## {ABLATION_SECTION}")
    assert "### Ablation — synthetic" in section
    assert ("| Lever flipped | Method | Song accuracy | Song F1 | Block accuracy | Seeds | Δ song accuracy |"
            in section)
    s = summarise(results)[2]
    full = s.method("voice-knn").song.accuracy
    rows = _rows(section)
    del rows[("Lever flipped", "Method")]  # the header
    assert list(rows) == [("Voice-AttCRNN-KNN (all levers)", "voice-knn"),
                          *((METHOD_LABELS[m], m) for m in ABLATIONS_RUN)]
    for method in ABLATIONS_RUN:
        acc = s.method(method).song.accuracy
        delta = sum(v - dict(full.per_seed)[seed] for seed, v in acc.per_seed) / 2
        assert rows[(METHOD_LABELS[method], method)] == [fmt(acc), fmt(s.method(method).song.f1),
                                                          fmt(s.method(method).block.accuracy), "2", fmt_delta(delta)]


def test_ablation_methods_stay_out_of_the_k_and_per_singer_tables(md):
    for title in ("## Accuracy vs K", "## Per-singer F1 (song level)"):
        section = _section(md, title)
        assert "Voice-AttCRNN-KNN (ours)" in section
        for method in ABLATIONS_RUN:
            assert METHOD_LABELS[method] not in section


def test_fmt_delta_is_signed():
    assert [fmt_delta(x) for x in (-0.123, 0.031, 0.0, -0.001, None)] == ["-0.12", "+0.03", "+0.00", "+0.00", "–"]


def test_notes_say_whether_the_voice_embedder_beats_mfcc_and_ge2e(md, results):
    s = summarise(results)[2]
    voice, mfcc, ge2e = (s.method(m).song.f1 for m in ("voice-knn", "mfcc-logreg", "ge2e-knn"))
    verdicts = _section(md, "## Do the deep models beat the simple baseline?")
    line = next(x for x in verdicts.splitlines() if x.startswith("- synthetic, our voice embedder"))
    assert line.startswith("- synthetic, our voice embedder, song-level macro F1 on the same split "
                           "(album split 4/1/1 per singer (synthetic corpus); seeds 0, 1): Voice-AttCRNN-KNN (ours) ")
    for rival, f1 in (("MFCC + LogReg", mfcc), ("GE2E-KNN", ge2e)):
        word = "beats" if voice.mean > f1.mean else "does NOT beat"
        assert f"{word} {rival} ({voice.mean:.2f} vs {f1.mean:.2f}" in line
    assert "artist20, our voice embedder" not in verdicts  # voice-knn did not run there
    for method in ABLATION_METHODS:  # the ablation table compares those with voice-knn
        assert METHOD_LABELS[method] not in verdicts


def test_the_voice_verdict_says_when_a_rival_was_not_run():
    ds = ablation_dataset({"voice-knn": {0: 16, 1: 18}, "ge2e-knn": {0: 18, 1: 18}})
    md = render_markdown(EvaluationResults(datasets=(ds,)), summarise(EvaluationResults(datasets=(ds,))))
    assert "- synthetic: no mfcc-logreg baseline was run" in md
    assert ("seeds 0, 1): Voice-AttCRNN-KNN (ours) does NOT beat GE2E-KNN (0.85 vs 0.90, within one std over seeds); "
            "MFCC + LogReg was not run, so not compared.") in md


def test_reused_training_shows_its_original_time_marked_and_out_of_the_totals():
    from singerid.evaluation import DatasetResult, StageTiming
    from singerid.evaluation.tables import timings_table

    ds = dataset("synthetic", ARTIST20[:3], (0, 1), methods=("attcrnn",))
    ds = DatasetResult(key=ds.key, split_rule=ds.split_rule, seeds=ds.seeds, singers=ds.singers, runs=ds.runs,
                       timings=(StageTiming("train attcrnn", 812.5, 0, reused=True), StageTiming("train attcrnn", 40.0, 1),
                                StageTiming("search", 0.5, 0), StageTiming("search", 0.25, 1)))
    table = timings_table(summarise_dataset(ds))
    assert table.rows == (("train attcrnn", "812.5*", "40.0", "40.0"), ("search", "0.5", "0.2", "0.8"),
                          ("total", "0.5", "40.2", "40.8"))
    assert table.caption.endswith("* = reused: a model an earlier run trained (found in OUT or copied from "
                                  "--reuse-home); its original training time, not counted in the totals.")

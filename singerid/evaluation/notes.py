"""The report's prose: how to read the tables, which datasets failed, whether each deep model
beats the simple mfcc-logreg baseline, and whether our voice embedder beats it and GE2E-KNN.
Shared by report.md and report.html."""

from __future__ import annotations

from singerid.evaluation.metrics import Aggregate
from singerid.evaluation.paper import (ALBUM_SPLIT_BEST_SONG_F1, ALBUM_SPLIT_CRNN_SONG_F1,
                                       FIG3_BLOCK_ACCURACY_A20, PAPER_CITATION)
from singerid.evaluation.results import ABLATION_METHODS, PAPER_DATASETS
from singerid.evaluation.summary import DatasetSummary
from singerid.evaluation.tables import DASH, METHOD_LABELS, NA

BASELINE = "mfcc-logreg"
VOICE = "voice-knn"  # our best configuration
CLEAN_QUERIES = "voice-knn-clean"  # voice-knn queried with the clean voice stems
CLEAN_CEILING = "mfcc-logreg-clean"  # the baseline trained and tested on the clean voice stems
VOICE_RIVALS: dict[str, str] = {BASELINE: "MFCC + LogReg", "ge2e-knn": "GE2E-KNN"}  # compared with voice-knn


def paper_dataset_ran(summaries: tuple[DatasetSummary, ...]) -> bool:
    """Whether any of the paper's datasets (artist20, singer32, singer60) is in this report."""
    return any(s.key in PAPER_DATASETS for s in summaries)


def reading_notes(summaries: tuple[DatasetSummary, ...]) -> tuple[str, ...]:
    """Short paragraphs that say what the numbers mean and what they can be compared with.

    The paragraphs about the paper's Table 1 and datasets appear only when a paper dataset ran.
    """
    notes = (
        "Numbers are mean ± standard deviation over seeds (population std, ddof = 0; one seed shows the "
        "value alone); every per-seed value is in report.json, every song's answer in predictions/. "
        "Precision, recall and F1 are macro averages over the full singer list (scikit-learn, "
        "zero_division = 0).",
        "Song level: each test song gets the majority singer of its 1-s blocks (ties: summed block score, "
        "then name). Block level: each 1-s block (32 frames) on its own.",
    )
    if not paper_dataset_ran(summaries):
        return notes + (
            f"No paper dataset ({', '.join(PAPER_DATASETS)}) ran, so the paper's Table 1 is not shown: every "
            "number here was measured by this run. † marks methods the paper does not have; "
            f"\"{NA}\" = the method has no such level (MFCC + LogReg sees whole songs).",
        ) + _stem_notes(summaries)
    lo, hi = ALBUM_SPLIT_BEST_SONG_F1
    album_context = (f"careful album-split re-runs of that CRNN baseline reach about {ALBUM_SPLIT_CRNN_SONG_F1:.1f} "
                     f"song-level F1, and the best published album-split models about {lo:.2f}–{hi:.2f}")
    a20 = next((s for s in summaries if s.key == "artist20"), None)
    rule = a20.result.split_rule.lower() if a20 is not None else ""
    if a20 is None:
        a20_ours = (f"artist20 was not run here; singerid evaluates it on the album split, where {album_context}.")
    elif "song" in rule and "album" not in rule:
        a20_ours = ("This run used a song split on artist20 too, so its numbers are comparable with the paper's "
                    "but, like them, inflated by albums that fall on both sides; on the album split "
                    f"{album_context}.")
    else:
        a20_ours = (f"Ours use the album split (no album in both train and test), which is much harder: {album_context}. "
                    "Lower artist20 numbers here are therefore expected and are not by themselves a failure to reproduce.")
    notes += (
        "The paper does not name the level of Table 1; it is the song level, since its Fig. 3 gives "
        f"{FIG3_BLOCK_ACCURACY_A20:.2f} block-level accuracy for the model it lists at 0.99.",
        "Rows marked \"paper\" are copied from " + PAPER_CITATION + "; rows marked \"ours\" were measured by "
        "this run; † marks our extra rows, methods the paper does not have (e.g. CRNN-KNN, MFCC + LogReg, "
        "our voice embedder, GE2E-KNN), shown only for methods that ran. "
        f"\"{DASH}\" = not run or failed, \"{NA}\" = the method has no such level (MFCC + LogReg sees whole songs).",
        "The paper's artist20 numbers (CRNN 0.93 F1) match what its CRNN baseline reaches on a song split, "
        "where songs of one album fall on both sides. " + a20_ours,
        "The paper splits singer32 and singer60 8:1:1 (train:val:test) per singer; the split used here is in "
        "each caption. The paper has no singer60 number for Attention-CRNN-KNN (its dense reference matrix "
        "did not fit in memory).",
    )
    return notes + _stem_notes(summaries)


def _stem_notes(summaries: tuple[DatasetSummary, ...]) -> tuple[str, ...]:
    """What the clean-stem rows are, where they ran."""
    notes: tuple[str, ...] = ()
    if any(s.method(CLEAN_QUERIES) is not None for s in summaries):
        notes += (f"{METHOD_LABELS[CLEAN_QUERIES]} queries our voice model (trained and indexed on separated "
                  "vocals) with the true clean voice stems of the test songs (only where stems exist, i.e. the "
                  "synthetic corpus). It is not an upper bound: clean stems differ from what the model learnt "
                  "from (separated vocals keep some accompaniment), so it can score below the separated queries.",)
    if any(s.method(CLEAN_CEILING) is not None for s in summaries):
        notes += (f"{METHOD_LABELS[CLEAN_CEILING]} trains and tests the simple baseline on the true clean voice "
                  f"stems: the clean-voice ceiling of that model, to compare with {METHOD_LABELS[BASELINE]} on the "
                  "mix (how much the accompaniment hides) and with the separated-voice rows.",)
    return notes


def failure_notes(summaries: tuple[DatasetSummary, ...]) -> tuple[str, ...]:
    """One line per dataset that failed, with its error and what was still reported."""
    lines = []
    for s in summaries:
        if s.result.error is None:
            continue
        kept = (f"results of {len(s.result.runs)} completed run(s) are still shown" if s.result.runs
                else "no results")
        lines.append(f"{s.key}: dataset failed: {s.result.error} ({kept}).")
    return tuple(lines)


def baseline_verdicts(summaries: tuple[DatasetSummary, ...]) -> tuple[str, ...]:
    """Plain lines per dataset: does each deep model beat mfcc-logreg on song-level macro F1?
    And, where voice-knn ran, does our voice embedder beat mfcc-logreg and GE2E-KNN?

    The ablation methods are left out: the ablation table compares them with voice-knn.
    """
    lines = []
    for s in summaries:
        deep = [m for m in s.methods if m.method not in (BASELINE, CLEAN_QUERIES, CLEAN_CEILING)
                and m.method not in ABLATION_METHODS]
        base = s.method(BASELINE)
        if not deep:
            continue
        if base is None:
            lines.append(f"{s.key}: no mfcc-logreg baseline was run, so the deep models are not compared with it.")
        else:
            parts = [f"{METHOD_LABELS[m.method]} {_compare(m.song.f1, base.song.f1, 'it')}" for m in deep]
            lines.append(f"{s.key}, song-level macro F1 against the mfcc-logreg baseline: " + "; ".join(parts) + ".")
        voice = voice_verdict(s)
        if voice is not None:
            lines.append(voice)
    return tuple(lines)


def voice_verdict(s: DatasetSummary) -> str | None:
    """Does our voice embedder (voice-knn) beat mfcc-logreg and GE2E-KNN on ``s``? None if it did not run."""
    voice = s.method(VOICE)
    if voice is None:
        return None
    seeds = ", ".join(str(x) for x in voice.seeds)
    compared = [_compare(voice.song.f1, rival.song.f1, label)
                for name, label in VOICE_RIVALS.items() if (rival := s.method(name)) is not None]
    missing = [label for name, label in VOICE_RIVALS.items() if s.method(name) is None]
    verdict = (f"{METHOD_LABELS[VOICE]} " + " and ".join(compared)) if compared else ""
    if missing:
        verdict += ("; " if compared else "") + " and ".join(missing) + \
            (" was" if len(missing) == 1 else " were") + " not run, so not compared"
    return (f"{s.key}, our voice embedder, song-level macro F1 on the same split ({s.result.split_rule}; "
            f"seeds {seeds}): {verdict}.")


def _compare(a: Aggregate, b: Aggregate, rival: str) -> str:
    """"beats <rival> (0.71 vs 0.52)" or "does NOT beat <rival> (...)", flagging a gap within one std."""
    verdict = "beats" if a.mean > b.mean else "does NOT beat"
    noise = (", within one std over seeds"
             if min(a.n_seeds, b.n_seeds) > 1 and abs(a.mean - b.mean) <= max(a.std, b.std) else "")
    return f"{verdict} {rival} ({a.mean:.2f} vs {b.mean:.2f}{noise})"

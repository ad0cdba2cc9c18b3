"""report.md: this run's numbers first (the paper's Table 1 with the published numbers beside
ours when a paper dataset ran; tables of the user's own datasets), then the verdicts, the
ablation of our voice embedder, accuracy vs K, per-singer F1, per-song predictions linked to
predictions.csv, counts and timings, as GitHub-flavoured Markdown."""

from __future__ import annotations

from singerid.evaluation.notes import baseline_verdicts, failure_notes, paper_dataset_ran, reading_notes
from singerid.evaluation.results import PAPER_DATASETS, EvaluationResults
from singerid.evaluation.songs import per_song_table, prediction_links
from singerid.evaluation.summary import DatasetSummary
from singerid.evaluation.tables import (Table, ablation_table, accuracy_vs_k_table, counts_table, metric_table,
                                        per_singer_table, timings_table)

ABLATION_SECTION = "Ablation: one lever of Voice-AttCRNN-KNN flipped"
PER_SONG_SECTION = "Per-song predictions"


def main_tables(summaries: tuple[DatasetSummary, ...]) -> list[Table]:
    """Table 1 (song) and Table 2 (block) on the paper's datasets, then the same for any
    other dataset (e.g. the synthetic corpus) in tables of their own.

    When no paper dataset ran, the paper's tables (ours all dashes) are left out and the
    user's datasets lead, titled by level and dataset.
    """
    other = tuple(s.key for s in summaries if s.key not in PAPER_DATASETS)
    if not paper_dataset_ran(summaries):
        return [metric_table(summaries, level, datasets=other, title=f"{level.capitalize()} level — {', '.join(other)}")
                for level in ("song", "block")]
    tables = [metric_table(summaries, "song", title="Table 1 — song level, paper datasets (A20 / S32 / S60)")]
    if other:
        tables.append(metric_table(summaries, "song", datasets=other,
                                   title=f"Table 1b — song level, other datasets ({', '.join(other)})"))
    tables.append(metric_table(summaries, "block", title="Table 2 — block level, paper datasets (A20 / S32 / S60)"))
    if other:
        tables.append(metric_table(summaries, "block", datasets=other,
                                   title=f"Table 2b — block level, other datasets ({', '.join(other)})"))
    return tables


def ablation_tables(summaries: tuple[DatasetSummary, ...]) -> list[Table]:
    """The ablation table of each dataset where an ablation method ran (may be empty)."""
    return [t for t in (ablation_table(s) for s in summaries) if t is not None]


def detail_tables(summaries: tuple[DatasetSummary, ...]) -> dict[str, list[Table]]:
    """Section title -> per-dataset tables (datasets without such data are left out)."""
    sections = {
        "Accuracy vs K": [accuracy_vs_k_table(s) for s in summaries],
        "Per-singer F1 (song level)": [per_singer_table(s, "song") for s in summaries],
        "Counts": [counts_table(s) for s in summaries],
        "Timings": [timings_table(s) for s in summaries],
    }
    return {title: [t for t in tables if t is not None] for title, tables in sections.items()}


def render_markdown(results: EvaluationResults, summaries: tuple[DatasetSummary, ...]) -> str:
    """The whole report.md text: the numbers first, then what they mean, then the details."""
    datasets = ", ".join(f"{s.key} ({s.result.split_rule})" for s in summaries)
    out = ["# singerid evaluation report", "",
           f"Generated {results.generated_at}. Datasets: {datasets}. "
           "Machine-readable numbers: report.json; figures: report.html; every song's answer: predictions/.", ""]
    failures = failure_notes(summaries)
    if failures:
        out += ["## Failed datasets", ""] + [f"- {line}" for line in failures] + [""]
    for table in main_tables(summaries):
        out += _section(table, "##")
    out += ["## Do the deep models beat the simple baseline?", ""]
    out += [f"- {line}" for line in baseline_verdicts(summaries)] or ["- No deep model was run."]
    out.append("")
    out += ["## How to read this", ""] + [f"- {line}" for line in reading_notes(summaries)] + [""]
    ablations = ablation_tables(summaries)
    if ablations:
        out += [f"## {ABLATION_SECTION}", ""]
        for table in ablations:
            out += _section(table, "###")
    per_song = [(table, prediction_links(s)) for s in summaries if (table := per_song_table(s)) is not None]
    for title, tables in detail_tables(summaries).items():
        if title == "Counts" and per_song:  # after per-singer F1: from singers down to songs
            out += [f"## {PER_SONG_SECTION}", ""]
            for table, links in per_song:
                out += _section(table, "###", links=links)
        if tables:
            out += [f"## {title}", ""]
            for table in tables:
                out += _section(table, "###")
    return "\n".join(out).rstrip() + "\n"


def markdown_table(table: Table) -> list[str]:
    """Markdown lines of ``table``; a column's header is "<group> <column>" (e.g. "Accuracy A20")."""
    header: list[str] = []
    col = 0
    for group, span in table.groups:
        for name in table.columns[col:col + span]:
            header.append(f"{group} {name}".strip())
        col += span
    header += list(table.columns[col:])
    align = ["---" if i < table.groups[0][1] else "---:" for i in range(len(header))]
    lines = [_row(header), _row(align)]
    for row in table.rows:
        lines.append(_row(row))
    return lines


def _section(table: Table, level: str, links=()) -> list[str]:
    """Title, caption, (one line of predictions.csv links per seed), the table."""
    lines = [f"- seed {seed}: " + " · ".join(f"[{label}]({path})" for label, path in pairs) for seed, pairs in links]
    lines = ["Predictions (CSV, one row per test song):", "", *lines, ""] if lines else []
    return [f"{level} {table.title}", "", f"*{table.caption}*", "", *lines, *markdown_table(table), ""]


def _row(cells) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

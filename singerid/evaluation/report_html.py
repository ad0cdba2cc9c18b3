"""report.html: one self-contained page (inline CSS, figures as base64 PNG, no scripts; the only
links are to the predictions.csv files beside it) with the tables of report.md (this run's
numbers first, the ablation included) and the figures: confusion matrices in a grid, accuracy
vs K (with its sample sizes), per-singer F1 and the timbre map of the test blocks."""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Sequence

from singerid.evaluation import figures
from singerid.evaluation.notes import baseline_verdicts, failure_notes, reading_notes
from singerid.evaluation.report_md import ABLATION_SECTION, ablation_tables, main_tables
from singerid.evaluation.results import ABLATION_METHODS, EvaluationResults, TimbreSample
from singerid.evaluation.songs import per_song_table, prediction_links
from singerid.evaluation.summary import DatasetSummary
from singerid.evaluation.tables import (METHOD_LABELS, Table, accuracy_vs_k_table, counts_table,
                                        per_singer_table, timings_table)

log = logging.getLogger(__name__)

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; text-align: center; }
td:first-child, td:nth-child(2) { text-align: left; }
tr.paper td { background: #f7f7f7; color: #555; font-style: italic; }
tr.extra td { background: #fffbea; }
caption { caption-side: top; text-align: left; font-size: 0.9em; color: #444; padding-bottom: 0.3em; }
figure { margin: 1em 0; } img { max-width: 100%; height: auto; border: 1px solid #eee; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 0 1em; }
.grid figure { margin: 0.5em 0; } figcaption { font-size: 0.85em; color: #444; }
.error { color: #a00; font-weight: bold; }
.scroll { overflow-x: auto; }
.links { font-size: 0.85em; } .links a { margin-right: 0.6em; }
"""


def render_html(results: EvaluationResults, summaries: tuple[DatasetSummary, ...],
                timbre: Sequence[TimbreSample] = ()) -> str:
    """The whole report.html text (UTF-8, self-contained)."""
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>singerid evaluation report</title>", f"<style>{CSS}</style></head><body>",
             "<h1>singerid evaluation report</h1>",
             f"<p>Generated {e(results.generated_at)}. Datasets: "
             + ", ".join(f"<b>{e(s.key)}</b> ({e(s.result.split_rule)})" for s in summaries) + ".</p>"]
    failures = failure_notes(summaries)
    if failures:
        parts += ["<h2>Failed datasets</h2>", _list(failures, css="error")]
    for table in main_tables(summaries):
        parts += [f"<h2>{e(table.title)}</h2>", html_table(table)]
    parts += ["<h2>Do the deep models beat the simple baseline?</h2>",
              _list(baseline_verdicts(summaries) or ("No deep model was run.",)),
              "<h2>How to read this</h2>", _list(reading_notes(summaries))]
    ablations = ablation_tables(summaries)
    if ablations:
        parts.append(f"<h2>{e(ABLATION_SECTION)}</h2>")
        for table in ablations:
            parts += [f"<h3>{e(table.title)}</h3>", html_table(table)]
    for s in summaries:
        parts += _dataset_section(s, [t for t in timbre if t.dataset == s.key])
    orphans = [t for t in timbre if t.dataset not in {s.key for s in summaries}]
    for sample in orphans:
        parts.append(_figure(figures.timbre_map_png(sample), f"Timbre map of {sample.dataset}"))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def html_table(table: Table) -> str:
    """A <table> with a caption, a row of column groups (colspan) and a row of columns."""
    e = html.escape
    group_row = "".join(f'<th colspan="{span}">{e(label)}</th>' for label, span in table.groups)
    covered = sum(span for _, span in table.groups)
    group_row += "<th></th>" * (len(table.columns) - covered)
    col_row = "".join(f"<th>{e(c)}</th>" for c in table.columns)
    body = "".join(f'<tr class="{kind}">' + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>"
                   for row, kind in zip(table.rows, table.kinds))
    return (f'<div class="scroll"><table><caption>{e(table.caption)}</caption>'
            f"<thead><tr>{group_row}</tr><tr>{col_row}</tr></thead><tbody>{body}</tbody></table></div>")


def _dataset_section(s: DatasetSummary, samples: list[TimbreSample]) -> list[str]:
    e = html.escape
    out = [f"<h2>{e(s.key)}</h2>"]
    if s.result.error:
        out.append(f'<p class="error">Dataset failed: {e(s.result.error)}</p>')
    singers = s.result.singers
    grid = []
    for m in (m for m in s.methods if m.method not in ABLATION_METHODS):  # those have their own table
        name = METHOD_LABELS[m.method]
        grid.append(_figure(figures.confusion_png(m.confusion_song, singers,
                                                  title=f"{s.key}, {name}: song-level confusion (seeds summed)"),
                            f"{s.key}: song-level confusion matrix of {name}, rows = true singer"))
        if m.method == "attcrnn-knn" and m.confusion_block is not None:
            grid.append(_figure(figures.confusion_png(m.confusion_block, singers,
                                                      title=f"{s.key}, {name}: block-level confusion (cf. paper Fig. 3)"),
                                f"{s.key}: block-level confusion matrix of {name}, as the paper's Fig. 3"))
    if grid:
        out += [f"<h3>Confusion matrices — {e(s.key)}</h3>", '<div class="grid">', *grid, "</div>"]
    k_png = figures.accuracy_vs_k_png(s)
    if k_png is not None:
        out.append(_figure(k_png, f"{s.key}: accuracy vs K"))
    k_table = accuracy_vs_k_table(s)
    if k_table is not None:
        out += [f"<h3>{e(k_table.title)}</h3>", html_table(k_table)]
    f1_png = figures.per_singer_f1_png(s, "song")
    if f1_png is not None:
        out.append(_figure(f1_png, f"{s.key}: per-singer F1, song level"))
    table = per_singer_table(s, "song")
    if table is not None:
        out += [f"<h3>{e(table.title)}</h3>", html_table(table)]
    songs = per_song_table(s)
    if songs is not None:
        out += [f"<h3>{e(songs.title)}</h3>", _links(prediction_links(s)), html_table(songs)]
    for table in (counts_table(s), timings_table(s)):
        if table is not None:
            out += [f"<h3>{e(table.title)}</h3>", html_table(table)]
    for sample in samples:
        out.append(_figure(figures.timbre_map_png(sample),
                           f"{s.key}: timbre map of singers — each point is one 1-s {sample.split} block (t-SNE of "
                           f"{sample.method} block embeddings, cf. paper Fig. 2)"))
    return out


def _links(links) -> str:
    """One line per seed of links to the runs' predictions.csv files (relative to the report)."""
    e = html.escape
    rows = [f"seed {seed}: " + "".join(f'<a href="{e(path)}">{e(label)}</a>' for label, path in pairs)
            for seed, pairs in links]
    return ('<p class="links">Predictions (CSV, one row per test song): ' + "<br>".join(rows) + "</p>") if rows else ""


def _figure(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    c = html.escape(caption)
    return f'<figure><img src="data:image/png;base64,{data}" alt="{c}"><figcaption>{c}</figcaption></figure>'


def _list(lines: Sequence[str], css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f"<ul{cls}>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"

"""The one entry point of the reporting half of ``evaluate``: write report.json, report.md,
report.html and the predictions.csv files from an ``EvaluationResults``; and the compact
terminal summary."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from singerid.errors import ArtefactError
from singerid.evaluation.report_html import render_html
from singerid.evaluation.report_json import build_report, render_json
from singerid.evaluation.predictions import PREDICTIONS_DIR, predictions_path, render_predictions_csv, runs_with_songs
from singerid.evaluation.report_md import render_markdown
from singerid.evaluation.results import ABLATION_METHODS, EvaluationResults, TimbreSample
from singerid.evaluation.summary import METRICS, summarise
from singerid.evaluation.tables import METHOD_LABELS, NA, fmt

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """Where the three reports and the predictions.csv files (one per run, see ``predictions``) were written."""

    json: Path
    markdown: Path
    html: Path
    predictions: tuple[Path, ...] = ()


def write_reports(results: EvaluationResults, out_dir: Path, *,
                  timbre: TimbreSample | Sequence[TimbreSample] | None = None) -> ReportPaths:
    """Write report.json, report.md, report.html and OUT/predictions/ into ``out_dir`` (created if missing).

    The JSON document is validated before anything is written; each file is written to a
    temporary file in its directory and renamed, so a reader never sees half a report. The
    predictions folder ends up holding exactly this report's CSV files (older ones are removed).
    ``timbre``: block embeddings for the timbre map(s) in report.html (one per dataset), or None.
    Raises: ArtefactError when ``out_dir`` cannot be written or the report is not valid.
    """
    out_dir = Path(out_dir)
    samples = () if timbre is None else ((timbre,) if isinstance(timbre, TimbreSample) else tuple(timbre))
    try:  # first, so that a bad --out fails before minutes of rendering
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtefactError(f"cannot create report directory {str(out_dir)!r}: {exc.strerror}") from exc
    summaries = summarise(results)
    doc = build_report(results, summaries)  # validates: no report is written when it is invalid
    csvs = write_predictions(results, out_dir)  # first: the reports link to them
    texts = {"report.json": render_json(doc), "report.md": render_markdown(results, summaries),
             "report.html": render_html(results, summaries, samples)}
    for name, text in texts.items():
        write_text_atomic(out_dir / name, text)
    log.info("reports written to %s", out_dir)
    return ReportPaths(json=out_dir / "report.json", markdown=out_dir / "report.md", html=out_dir / "report.html",
                       predictions=csvs)


def write_predictions(results: EvaluationResults, out_dir: Path) -> tuple[Path, ...]:
    """One predictions.csv per run that knows its songs; CSVs of earlier reports in OUT/predictions go.

    Raises: ArtefactError when a file cannot be written.
    """
    written = []
    for ds, run in runs_with_songs(results):
        path = out_dir / predictions_path(ds.key, run.seed, run.method)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArtefactError(f"cannot create {str(path.parent)!r}: {exc.strerror or exc}") from exc
        write_text_atomic(path, render_predictions_csv(ds.key, run))
        written.append(path)
    keep = set(written)
    folder = out_dir / PREDICTIONS_DIR
    for stale in sorted(folder.glob("*/seed-*/*.csv")) if folder.is_dir() else ():
        if stale not in keep:
            stale.unlink()
            log.info("removed %s (not part of this report)", stale)
    for empty in sorted(folder.glob("*/seed-*"), reverse=True) + sorted(folder.glob("*"), reverse=True):
        if empty.is_dir() and not any(empty.iterdir()):
            empty.rmdir()
    return tuple(written)


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` via a temporary file in the same directory + rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            with open(tmp, "x", encoding="utf-8") as fh:  # "x": a fresh file, mode from the umask
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ArtefactError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc


def format_summary(results: EvaluationResults) -> str:
    """A compact Table-1-style text table per dataset for the terminal.

    Song-level accuracy / precision / recall / F1 and block-level accuracy / F1, mean ± std
    over seeds, with the split rule and seeds in each dataset's heading. Ablation rows (our
    voice embedder with one lever flipped) follow, labelled "ablation - <lever>".
    """
    lines = []
    head = ("method", *(f"song {m}" for m in ("acc", "P", "R", "F1")), "block acc", "block F1")
    for s in summarise(results):
        ds = s.result
        seeds = ",".join(str(x) for x in ds.seeds)
        lines.append(f"{ds.key}: {ds.split_rule}; seeds {seeds}")
        if ds.error:
            lines.append(f"  dataset failed: {ds.error}")
        if not s.methods:
            lines.append("")
            continue
        rows = [head]
        for m in s.methods:
            song = [fmt(m.song.metric(name)) for name in METRICS]
            block = [NA, NA] if m.block is None else [fmt(m.block.accuracy), fmt(m.block.f1)]
            label = METHOD_LABELS[m.method]
            rows.append((f"ablation {label}" if m.method in ABLATION_METHODS else label, *song, *block))
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        for r in rows:
            lines.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"

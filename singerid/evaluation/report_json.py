"""report.json: the machine-readable report (schema version 3, docs/report-schema.md,
singerid/evaluation/report.schema.json)."""

from __future__ import annotations

import json
import logging
import platform
from importlib import metadata
from typing import Any

from singerid.evaluation.metrics import Aggregate
from singerid.evaluation.predictions import predictions_path
from singerid.evaluation.results import KNN_METHODS, EvaluationResults
from singerid.evaluation.schema import SCHEMA_VERSION, validate_report
from singerid.evaluation.summary import (METRICS, AblationRow, DatasetSummary, LevelSummary, MethodSummary,
                                         SingerSummary, ablation_rows, summarise)
from singerid.evaluation.tables import FULL_CONFIGURATION_LABEL, METHOD_LABELS

log = logging.getLogger(__name__)

# report key -> distribution name; versions are read from package metadata, nothing imported
SOFTWARE_PACKAGES: dict[str, tuple[str, ...]] = {
    "singerid": ("singerid",),
    "numpy": ("numpy",),
    "sklearn": ("scikit-learn",),
    "torch": ("torch",),
    "faiss": ("faiss-cpu", "faiss-gpu", "faiss"),
    "sqlalchemy": ("sqlalchemy",),
    "librosa": ("librosa",),
    "matplotlib": ("matplotlib",),
}


def software_versions() -> dict[str, str | None]:
    """Python, platform and package versions ({name: version or None when not installed})."""
    out: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for key, dists in SOFTWARE_PACKAGES.items():
        out[key] = None
        for dist in dists:
            try:
                out[key] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def build_report(results: EvaluationResults,
                 summaries: tuple[DatasetSummary, ...] | None = None) -> dict[str, Any]:
    """The report.json document of ``results`` (validated; raises ArtefactError if not valid).

    ``summaries``: the output of ``summarise(results)`` when the caller already has it.
    """
    summaries = summarise(results) if summaries is None else summaries
    doc = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": results.generated_at,
        "software": software_versions(),
        "config": json.loads(json.dumps(dict(results.config), default=str)),
        "datasets": {s.key: _dataset(s) for s in summaries},
    }
    validate_report(doc)
    return doc


def render_json(doc: dict[str, Any]) -> str:
    """report.json text: indented, keys in schema order, newline at the end."""
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def _dataset(s: DatasetSummary) -> dict[str, Any]:
    ds = s.result
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for c in ds.counts:
        counts.setdefault(str(c.seed), {})[c.split] = {"songs": c.n_songs, "blocks": c.n_blocks}
    stages = [{"stage": t.stage, "seed": t.seed, "seconds": float(t.seconds), "reused": t.reused}
              for t in ds.timings]
    ablation = ablation_rows(s)
    return {
        "split": {"rule": ds.split_rule, "seeds": list(ds.seeds)},
        "singers": list(ds.singers),
        "counts": counts,
        "timings": {"stages": stages,  # reused stages were spent by an earlier run: not in this run's total
                    "total_seconds": float(sum(st["seconds"] for st in stages if not st["reused"]))},
        "error": ds.error,
        "methods": {m.method: _method(m, _pointers(s, m.method)) for m in s.methods},
        "ablation": [_ablation(row) for row in ablation] if ablation else None,
    }


def _pointers(s: DatasetSummary, method: str) -> dict[str, str] | None:
    """{seed: predictions.csv path relative to report.json} of the runs that know their songs, or None."""
    paths = {str(r.seed): predictions_path(s.key, r.seed, method) for r in s.result.runs_of(method)
             if r.songs is not None}
    return paths or None


def _method(m: MethodSummary, predictions: dict[str, str] | None) -> dict[str, Any]:
    return {
        "seeds": list(m.seeds),
        "block": _level(m.block) if m.block is not None else None,
        "song": _level(m.song),
        "per_singer": {"song": [_singer(r) for r in m.singers_song],
                       "block": [_singer(r) for r in m.singers_block] if m.singers_block is not None else None},
        "confusion": {"song": m.confusion_song.tolist(),
                      "block": m.confusion_block.tolist() if m.confusion_block is not None else None},
        "accuracy_vs_k": ([{"k": p.k, "song": _agg(p.song), "block": _agg(p.block)} for p in m.accuracy_vs_k]
                          if m.method in KNN_METHODS else None),
        "predictions": predictions,
    }


def _ablation(row: AblationRow) -> dict[str, Any]:
    return {
        "method": row.method,
        "label": FULL_CONFIGURATION_LABEL if row.lever is None else METHOD_LABELS[row.method],
        "lever": row.lever,
        "song_accuracy": _stat(row.song_accuracy),
        "song_f1": _stat(row.song_f1),
        "block_accuracy": _stat(row.block_accuracy),
        "delta_song_accuracy": row.delta_song_accuracy,
    }


def _stat(agg: Aggregate | None) -> dict[str, Any] | None:
    return None if agg is None else {"mean": agg.mean, "std": agg.std, "n_seeds": agg.n_seeds}


def _level(level: LevelSummary) -> dict[str, Any]:
    out: dict[str, Any] = {"n_items": {str(seed): n for seed, n in level.n_items}}
    out.update({name: _agg(level.metric(name)) for name in METRICS})
    return out


def _singer(row: SingerSummary) -> dict[str, Any]:
    return {"singer": row.singer, "support": row.support, "precision": _agg(row.precision),
            "recall": _agg(row.recall), "f1": _agg(row.f1)}


def _agg(agg: Aggregate) -> dict[str, Any]:
    return {"mean": agg.mean, "std": agg.std, "per_seed": {str(seed): value for seed, value in agg.per_seed}}

"""Evaluation reports: metrics, the versioned report.json schema, report.md / report.html.

The ``evaluate`` pipeline produces predictions (``EvaluationResults``) and calls
``write_reports``; everything else here is the arithmetic and the writers behind it.
Importing this package loads numpy only (scikit-learn and matplotlib load when used).
"""

from singerid.evaluation.metrics import Aggregate, LevelMetrics, SingerMetrics, aggregate, confusion, level_metrics, singer_metrics
from singerid.evaluation.reports import ReportPaths, format_summary, write_reports
from singerid.evaluation.results import (K_VALUES, KNN_METHODS, METHODS, DatasetResult, EvaluationResults,
                                         KAccuracy, Predictions, RunResult, SongDetails, SplitCount, StageTiming,
                                         TimbreSample)
from singerid.evaluation.schema import SCHEMA_VERSION, validate_report
from singerid.evaluation.voting import vote_predictions, vote_songs

__all__ = [
    "K_VALUES", "KNN_METHODS", "METHODS", "SCHEMA_VERSION", "Aggregate", "DatasetResult", "EvaluationResults",
    "KAccuracy", "LevelMetrics", "Predictions", "ReportPaths", "RunResult", "SingerMetrics", "SplitCount",
    "SongDetails", "StageTiming", "TimbreSample", "aggregate", "confusion", "format_summary", "level_metrics",
    "singer_metrics", "validate_report", "vote_predictions", "vote_songs", "write_reports",
]

"""The report.json schema (version 3; versions 1 and 2 still read): a JSON Schema file, plus
the arithmetic a JSON Schema cannot state.

``report.schema.json`` (shipped beside this module, docs/report-schema.md in words) gives the
layout of every version: keys, types, ranges, which method has which level. ``jsonschema``
checks it. What remains here is consistency between values: each ``mean`` is the mean of its
``per_seed``, seeds belong to the dataset's seeds, matrices and per-singer lists have one row
per singer, K grows, ``total_seconds`` adds up, and the ablation rows agree with the methods.
``validate_report`` is called by the writer before anything is written, and by the tests.
Errors name the JSON path of the bad value, e.g.
``datasets.artist20.methods.crnn.song.f1.mean: 1.2 is greater than the maximum of 1``.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from singerid.errors import ArtefactError
from singerid.evaluation.results import ABLATION_METHODS
from singerid.evaluation.summary import ABLATION_LEVERS, ABLATION_REFERENCE

SCHEMA_VERSION = 3  # 3: predictions.csv pointers, reused stages; 2: voice, GE2E and ablation methods
KNOWN_VERSIONS = (1, 2, 3)  # what validate_report accepts; each is checked against its own layout
SCHEMA_FILE = "report.schema.json"
_TOLERANCE = 1e-9  # means and totals are recomputed from rounded-trip floats


def validate_report(doc: Any) -> None:
    """Check ``doc`` (a parsed report.json) against the layout of its schema version (1, 2 or 3).

    Raises: ArtefactError naming the first bad value's path (and how many more problems there are).
    """
    errors = report_errors(doc)
    if errors:
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ArtefactError(f"invalid report.json: {errors[0]}{more}")


def report_errors(doc: Any) -> list[str]:
    """Every problem of ``doc``, one line each (empty = valid): the layout's first (jsonschema's
    best match, then the others as found); the consistency checks only once the layout is right."""
    from jsonschema.exceptions import best_match

    layout = list(_validator().iter_errors(doc))
    if layout:
        first = best_match(layout)
        return [_layout_message(e) for e in (first, *(e for e in layout if e is not first))]
    return _Consistency(doc).errors


def load_schema() -> dict[str, Any]:
    """The JSON Schema document (report.schema.json, from the installed package)."""
    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


@cache
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema())


def json_path(parts) -> str:
    """``("datasets", "a20", "stages", 0)`` -> ``datasets.a20.stages[0]`` (``report`` for the root)."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "report"


def _layout_message(error) -> str:
    shown = repr(error.instance)
    message = error.message
    if len(shown) > 60:  # jsonschema quotes the whole offending value; a path and a type name say enough
        message = message.replace(shown, f"a {type(error.instance).__name__}")
    return f"{json_path(error.absolute_path)}: {message}"


class _Consistency:
    """The checks between values of a report whose layout is valid, in document order."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.errors: list[str] = []
        self.version = doc["schema_version"]
        for key, ds in doc["datasets"].items():
            self.dataset(ds, f"datasets.{key}")

    def fail(self, path: str, rule: str, value: Any) -> None:
        shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
        self.errors.append(f"{path}: {rule}, got {shown[:57] + '...' if len(shown) > 60 else shown}")

    def seeds_within(self, seeds: Any, allowed: list[int], path: str) -> None:
        for seed in seeds:
            if int(seed) not in allowed:
                self.fail(path, f"seeds must be among split.seeds {allowed}", seed)

    def dataset(self, ds: dict[str, Any], path: str) -> None:
        seeds, n = ds["split"]["seeds"], len(ds["singers"])
        self.seeds_within(ds["counts"], seeds, f"{path}.counts")
        stages = ds["timings"]["stages"]
        total = sum(s["seconds"] for s in stages if not s.get("reused", False))
        if abs(ds["timings"]["total_seconds"] - total) > 1e-6 * max(1.0, total):
            self.fail(f"{path}.timings.total_seconds", f"must equal the sum of the stages not reused ({total:g})",
                      ds["timings"]["total_seconds"])
        methods = ds["methods"]
        if not methods and ds["error"] is None:
            self.fail(f"{path}.methods", "must not be empty unless error is set", methods)
        if methods and not n:
            self.fail(f"{path}.singers", "must list the singers when methods have results", ds["singers"])
        for name, m in methods.items():
            self.method(m, f"{path}.methods.{name}", seeds, n)
        if self.version >= 2:
            self.ablation(ds["ablation"], f"{path}.ablation", methods)

    def method(self, m: dict[str, Any], path: str, seeds: list[int], n: int) -> None:
        self.seeds_within(m["seeds"], seeds, f"{path}.seeds")
        for name in ("song", "block"):
            if m["per_singer"][name] is not None and len(m["per_singer"][name]) != n:
                self.fail(f"{path}.per_singer.{name}", f"must have one row per singer ({n})", m["per_singer"][name])
            matrix = m["confusion"][name]
            if matrix is not None and (len(matrix) != n or any(len(row) != n for row in matrix)):
                self.fail(f"{path}.confusion.{name}", f"must be a {n}x{n} matrix", matrix)
            if m[name] is not None:
                self.seeds_within(m[name]["n_items"], m["seeds"], f"{path}.{name}.n_items")
        ks = [p["k"] for p in m["accuracy_vs_k"] or ()]
        if ks != sorted(set(ks)):
            self.fail(f"{path}.accuracy_vs_k", "k must increase strictly", ks)
        if m.get("predictions"):
            self.seeds_within(m["predictions"], m["seeds"], f"{path}.predictions")
        self.aggregates(m, path, m["seeds"])

    def aggregates(self, value: Any, path: str, seeds: list[int]) -> None:
        """Every ``{mean, std, per_seed}`` under ``value``: seeds of the method, mean of per_seed."""
        if isinstance(value, list):
            for i, item in enumerate(value):
                self.aggregates(item, f"{path}[{i}]", seeds)
        elif isinstance(value, dict) and "per_seed" in value:
            self.seeds_within(value["per_seed"], seeds, f"{path}.per_seed")
            mean = sum(value["per_seed"].values()) / len(value["per_seed"])
            if abs(value["mean"] - mean) > _TOLERANCE:
                self.fail(f"{path}.mean", f"must be the mean of per_seed ({mean:.6g})", value["mean"])
        elif isinstance(value, dict):
            for key, item in value.items():
                self.aggregates(item, f"{path}.{key}", seeds)

    def ablation(self, rows: list | None, path: str, methods: dict[str, Any]) -> None:
        """Rows mirror the report's ablation table and must agree with ``methods``."""
        ran = [m for m in ABLATION_METHODS if m in methods]
        if not ran:
            if rows is not None:
                self.fail(path, "must be null when no ablation method ran", rows)
            return
        expected = [ABLATION_REFERENCE, *ran]
        if rows is None or [row["method"] for row in rows] != expected:
            self.fail(path, f"must be a list with one row per method, in order: {', '.join(expected)}", rows)
            return
        full = _song_accuracy(methods.get(ABLATION_REFERENCE))
        for i, row in enumerate(rows):
            p, lever, entry = f"{path}[{i}]", ABLATION_LEVERS.get(row["method"]), methods.get(row["method"])
            if row["lever"] != lever:
                self.fail(f"{p}.lever", f"must be {lever!r}" if lever else "must be null for the full configuration",
                          row["lever"])
            for key, level, metric in (("song_accuracy", "song", "accuracy"), ("song_f1", "song", "f1"),
                                       ("block_accuracy", "block", "accuracy")):
                self.stat(row[key], f"{p}.{key}", ((entry or {}).get(level) or {}).get(metric))
            ours = _song_accuracy(entry) if lever else {}
            diffs = [ours[seed] - full[seed] for seed in ours if seed in full]
            self.delta(row["delta_song_accuracy"], f"{p}.delta_song_accuracy", diffs)

    def stat(self, stat: dict | None, path: str, agg: dict | None) -> None:
        """``{mean, std, n_seeds}`` equal to the method's aggregate ``agg``; null when it has none."""
        if agg is None or stat is None:
            if stat is not agg:
                self.fail(path, "must be null: the method has no such result" if agg is None
                          else "must give the method's numbers", stat)
            return
        if stat["n_seeds"] != len(agg["per_seed"]):
            self.fail(f"{path}.n_seeds", f"must equal the method's number of seeds ({len(agg['per_seed'])})",
                      stat["n_seeds"])
        for key in ("mean", "std"):
            if abs(stat[key] - agg[key]) > _TOLERANCE:
                self.fail(f"{path}.{key}", f"must equal the method's {key} ({agg[key]:.6g})", stat[key])

    def delta(self, delta: float | None, path: str, diffs: list[float]) -> None:
        """Song accuracy minus the full configuration's, mean over shared seeds; null without any."""
        if not diffs:
            if delta is not None:
                self.fail(path, "must be null without seeds shared with the full configuration", delta)
            return
        expected = sum(diffs) / len(diffs)
        if delta is None or abs(delta - expected) > _TOLERANCE:
            self.fail(path, f"must be the mean paired difference of song accuracy ({expected:.6g})", delta)


def _song_accuracy(method: dict[str, Any] | None) -> dict[str, float]:
    """{seed: song accuracy} of a method entry ({} when it did not run)."""
    return dict(method["song"]["accuracy"]["per_seed"]) if method else {}

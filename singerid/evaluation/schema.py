"""The report.json schema (version 2; version 1 still read) and a small explicit validator.

The schema is documented in docs/report-schema.md; this module is its executable form.
``validate_report`` is called by the writer before anything is written, and by the tests.
Errors name the JSON path of the bad value and quote it, e.g.
``datasets.artist20.methods.crnn.song.f1.mean must be a number in [0, 1], got 1.2``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from singerid.errors import ArtefactError
from singerid.evaluation.results import ABLATION_METHODS, KNN_METHODS, METHODS, SONG_ONLY_METHODS
from singerid.evaluation.summary import ABLATION_LEVERS, ABLATION_REFERENCE

SCHEMA_VERSION = 2  # 2: the voice, GE2E and ablation methods, and datasets.<d>.ablation
KNOWN_VERSIONS = (1, 2)  # what validate_report accepts; each is checked against its own layout
V1_METHODS = ("crnn", "attcrnn", "attcrnn-knn", "crnn-knn", "mfcc-logreg")  # the methods of version 1
TOP_KEYS = ("schema_version", "generated_at", "software", "config", "datasets")
DATASET_KEYS = ("split", "singers", "counts", "timings", "error", "methods", "ablation")
ABLATION_KEYS = ("method", "label", "lever", "song_accuracy", "song_f1", "block_accuracy", "delta_song_accuracy")
STAT_KEYS = ("mean", "std", "n_seeds")
METHOD_KEYS = ("seeds", "block", "song", "per_singer", "confusion", "accuracy_vs_k")
LEVEL_KEYS = ("n_items", "accuracy", "precision", "recall", "f1")
AGG_KEYS = ("mean", "std", "per_seed")
SINGER_KEYS = ("singer", "support", "precision", "recall", "f1")
SPLIT_NAMES = ("train", "val", "test")
_DATASET_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_SEED_KEY = re.compile(r"^-?[0-9]+$")
_MEAN_TOLERANCE = 1e-9


def validate_report(doc: Any) -> None:
    """Check ``doc`` (a parsed report.json) against the layout of its schema version (1 or 2).

    Raises: ArtefactError naming the first bad value's path (and how many more there are).
    """
    errors = report_errors(doc)
    if errors:
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ArtefactError(f"invalid report.json: {errors[0]}{more}")


def report_errors(doc: Any) -> list[str]:
    """Every schema violation of ``doc``, one line each, in document order (empty = valid)."""
    v = _Validator()
    v.report(doc)
    return v.errors


class _Validator:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.version = SCHEMA_VERSION  # the layout checked: the document's own, when known

    def fail(self, path: str, rule: str, value: Any) -> None:
        shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
        if len(shown) > 60:
            shown = shown[:57] + "..."
        self.errors.append(f"{path} {rule}, got {shown}")

    def obj(self, value: Any, path: str, keys: tuple[str, ...]) -> bool:
        """True when ``value`` is an object with exactly ``keys``; records what is wrong."""
        if not isinstance(value, dict):
            self.fail(path, "must be an object", value)
            return False
        missing = [k for k in keys if k not in value]
        extra = sorted(k for k in value if k not in keys)
        for key in missing:
            self.errors.append(f"{path}.{key} is missing")
        for key in extra:
            self.errors.append(f"{path}.{key} is not a known key (known: {', '.join(keys)})")
        return not missing

    def number(self, value: Any, path: str, *, lo: float | None = None, hi: float | None = None) -> bool:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (lo is None or value >= lo) and (hi is None or value <= hi)
        if not ok:
            rule = "must be a number" + (f" in [{lo:g}, {hi:g}]" if hi is not None else f" >= {lo:g}" if lo is not None else "")
            self.fail(path, rule, value)
        return ok

    def integer(self, value: Any, path: str, *, lo: int | None = None) -> bool:
        ok = isinstance(value, int) and not isinstance(value, bool) and (lo is None or value >= lo)
        if not ok:
            self.fail(path, "must be an integer" + (f" >= {lo}" if lo is not None else ""), value)
        return ok

    def text(self, value: Any, path: str) -> bool:
        ok = isinstance(value, str) and value.strip() != ""
        if not ok:
            self.fail(path, "must be a non-empty string", value)
        return ok

    # --- document structure -------------------------------------------------------------
    def report(self, doc: Any) -> None:
        if not self.obj(doc, "report", TOP_KEYS):
            return
        declared = doc["schema_version"]
        if isinstance(declared, int) and not isinstance(declared, bool) and declared in KNOWN_VERSIONS:
            self.version = declared
        else:
            self.fail("schema_version", f"must be {' or '.join(map(str, KNOWN_VERSIONS))}", declared)
        self.text(doc["generated_at"], "generated_at")
        if isinstance(doc["software"], dict):
            for name, version in doc["software"].items():
                if version is not None and not isinstance(version, str):
                    self.fail(f"software.{name}", "must be a version string or null", version)
        else:
            self.fail("software", "must be an object", doc["software"])
        if not isinstance(doc["config"], dict):
            self.fail("config", "must be an object", doc["config"])
        datasets = doc["datasets"]
        if not isinstance(datasets, dict) or not datasets:
            self.fail("datasets", "must be a non-empty object", datasets)
            return
        for key, ds in datasets.items():
            if not _DATASET_KEY.match(key):
                self.fail("datasets", "keys must be lower-case names like 'artist20'", key)
            self.dataset(ds, f"datasets.{key}")

    def dataset(self, ds: Any, path: str) -> None:
        if not self.obj(ds, path, DATASET_KEYS if self.version >= 2 else DATASET_KEYS[:-1]):
            return
        seeds: list[int] = []
        if self.obj(ds["split"], f"{path}.split", ("rule", "seeds")):
            self.text(ds["split"]["rule"], f"{path}.split.rule")
            seeds = self.seed_list(ds["split"]["seeds"], f"{path}.split.seeds", allow_empty=False)
        singers = ds["singers"]
        if not isinstance(singers, list) or not all(isinstance(s, str) and s for s in singers) \
                or len(set(singers)) != len(singers):
            self.fail(f"{path}.singers", "must be a list of distinct non-empty names", singers)
            singers = []
        self.counts(ds["counts"], f"{path}.counts", seeds)
        self.timings(ds["timings"], f"{path}.timings")
        if ds["error"] is not None:
            self.text(ds["error"], f"{path}.error")
        methods = ds["methods"]
        if not isinstance(methods, dict):
            self.fail(f"{path}.methods", "must be an object", methods)
            return
        if not methods and ds["error"] is None:
            self.fail(f"{path}.methods", "must not be empty unless error is set", methods)
        if methods and not singers:
            self.fail(f"{path}.singers", "must list the singers when methods have results", singers)
        known = METHODS if self.version >= 2 else V1_METHODS
        for name, method in methods.items():
            if name not in known:
                self.fail(f"{path}.methods", f"keys must be one of {', '.join(known)}", name)
                continue
            self.method(method, f"{path}.methods.{name}", name, seeds, len(singers))
        if self.version >= 2:
            self.ablation(ds["ablation"], f"{path}.ablation", methods)

    def seed_list(self, value: Any, path: str, *, allow_empty: bool) -> list[int]:
        ok = isinstance(value, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in value)
        if not ok or len(set(value)) != len(value) or (not value and not allow_empty):
            self.fail(path, "must be a list of distinct integers" + ("" if allow_empty else ", not empty"), value)
            return []
        return value

    def counts(self, counts: Any, path: str, seeds: list[int]) -> None:
        if not isinstance(counts, dict):
            self.fail(path, "must be an object", counts)
            return
        for seed, splits in counts.items():
            self.seed_key(seed, path, seeds)
            if not isinstance(splits, dict):
                self.fail(f"{path}.{seed}", "must be an object", splits)
                continue
            for split, count in splits.items():
                if split not in SPLIT_NAMES:
                    self.fail(f"{path}.{seed}", f"keys must be one of {', '.join(SPLIT_NAMES)}", split)
                elif self.obj(count, f"{path}.{seed}.{split}", ("songs", "blocks")):
                    self.integer(count["songs"], f"{path}.{seed}.{split}.songs", lo=0)
                    self.integer(count["blocks"], f"{path}.{seed}.{split}.blocks", lo=0)

    def timings(self, timings: Any, path: str) -> None:
        if not self.obj(timings, path, ("stages", "total_seconds")):
            return
        stages = timings["stages"]
        if not isinstance(stages, list):
            self.fail(f"{path}.stages", "must be a list", stages)
            return
        total = 0.0
        for i, stage in enumerate(stages):
            p = f"{path}.stages[{i}]"
            if self.obj(stage, p, ("stage", "seed", "seconds")):
                self.text(stage["stage"], f"{p}.stage")
                if stage["seed"] is not None:
                    self.integer(stage["seed"], f"{p}.seed")
                if self.number(stage["seconds"], f"{p}.seconds", lo=0):
                    total += stage["seconds"]
        if self.number(timings["total_seconds"], f"{path}.total_seconds", lo=0) \
                and abs(timings["total_seconds"] - total) > 1e-6 * max(1.0, total):
            self.fail(f"{path}.total_seconds", f"must equal the sum of the stages ({total:g})",
                      timings["total_seconds"])

    def seed_key(self, key: str, path: str, seeds: list[int]) -> None:
        if not _SEED_KEY.match(key) or (seeds and int(key) not in seeds):
            self.fail(path, f"keys must be seeds of split.seeds {seeds}", key)

    def method(self, m: Any, path: str, name: str, seeds: list[int], n_singers: int) -> None:
        if not self.obj(m, path, METHOD_KEYS):
            return
        run_seeds = self.seed_list(m["seeds"], f"{path}.seeds", allow_empty=False)
        for seed in run_seeds:
            if seeds and seed not in seeds:
                self.fail(f"{path}.seeds", f"must be a subset of split.seeds {seeds}", seed)
        self.level(m["song"], f"{path}.song", run_seeds)
        if name in SONG_ONLY_METHODS:
            if m["block"] is not None:
                self.fail(f"{path}.block", f"must be null: {name} has no block level", m["block"])
        else:
            self.level(m["block"], f"{path}.block", run_seeds)
        has_block = m["block"] is not None
        if self.obj(m["per_singer"], f"{path}.per_singer", ("song", "block")):
            self.singer_rows(m["per_singer"]["song"], f"{path}.per_singer.song", run_seeds, n_singers)
            self.optional(m["per_singer"]["block"], has_block, f"{path}.per_singer.block",
                          lambda v, p: self.singer_rows(v, p, run_seeds, n_singers))
        if self.obj(m["confusion"], f"{path}.confusion", ("song", "block")):
            self.matrix(m["confusion"]["song"], f"{path}.confusion.song", n_singers)
            self.optional(m["confusion"]["block"], has_block, f"{path}.confusion.block",
                          lambda v, p: self.matrix(v, p, n_singers))
        if name in KNN_METHODS:
            self.k_curve(m["accuracy_vs_k"], f"{path}.accuracy_vs_k", run_seeds)
        elif m["accuracy_vs_k"] is not None:
            self.fail(f"{path}.accuracy_vs_k", f"must be null: {name} is not a KNN method", m["accuracy_vs_k"])

    def optional(self, value: Any, required: bool, path: str, check) -> None:
        if required:
            check(value, path)
        elif value is not None:
            self.fail(path, "must be null when the method has no block level", value)

    def level(self, level: Any, path: str, seeds: list[int]) -> None:
        if not self.obj(level, path, LEVEL_KEYS):
            return
        n_items = level["n_items"]
        if isinstance(n_items, dict):
            self.per_seed_keys(n_items, f"{path}.n_items", seeds)
            for seed, n in n_items.items():
                self.integer(n, f"{path}.n_items.{seed}", lo=1)
        else:
            self.fail(f"{path}.n_items", "must be an object", n_items)
        for metric in ("accuracy", "precision", "recall", "f1"):
            self.aggregate(level[metric], f"{path}.{metric}", seeds)

    def aggregate(self, agg: Any, path: str, seeds: list[int]) -> None:
        if not self.obj(agg, path, AGG_KEYS):
            return
        ok = self.number(agg["mean"], f"{path}.mean", lo=0, hi=1)
        self.number(agg["std"], f"{path}.std", lo=0, hi=0.5)  # std of values in [0, 1] is <= 0.5
        per_seed = agg["per_seed"]
        if not isinstance(per_seed, dict):
            self.fail(f"{path}.per_seed", "must be an object", per_seed)
            return
        self.per_seed_keys(per_seed, f"{path}.per_seed", seeds)
        values = [v for s, v in per_seed.items() if self.number(v, f"{path}.per_seed.{s}", lo=0, hi=1)]
        if ok and values and len(values) == len(per_seed):
            mean = sum(values) / len(values)
            if abs(agg["mean"] - mean) > _MEAN_TOLERANCE:
                self.fail(f"{path}.mean", f"must be the mean of per_seed ({mean:.6g})", agg["mean"])

    def per_seed_keys(self, per_seed: dict, path: str, seeds: list[int]) -> None:
        if not per_seed:
            self.fail(path, "must not be empty", per_seed)
        for key in per_seed:
            self.seed_key(key, path, seeds)

    def singer_rows(self, rows: Any, path: str, seeds: list[int], n_singers: int) -> None:
        if not isinstance(rows, list) or len(rows) != n_singers:
            self.fail(path, f"must be a list with one row per singer ({n_singers})", rows)
            return
        for i, row in enumerate(rows):
            p = f"{path}[{i}]"
            if self.obj(row, p, SINGER_KEYS):
                self.text(row["singer"], f"{p}.singer")
                self.integer(row["support"], f"{p}.support", lo=0)
                for metric in ("precision", "recall", "f1"):
                    self.aggregate(row[metric], f"{p}.{metric}", seeds)

    def matrix(self, rows: Any, path: str, n: int) -> None:
        ok = isinstance(rows, list) and len(rows) == n and all(
            isinstance(r, list) and len(r) == n
            and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in r) for r in rows)
        if not ok:
            self.fail(path, f"must be a {n}x{n} list of lists of counts >= 0", rows)

    def k_curve(self, points: Any, path: str, seeds: list[int]) -> None:
        if not isinstance(points, list):
            self.fail(path, "must be a list for a KNN method", points)
            return
        previous = 0
        for i, point in enumerate(points):
            p = f"{path}[{i}]"
            if not self.obj(point, p, ("k", "song", "block")):
                continue
            if self.integer(point["k"], f"{p}.k", lo=1):
                if point["k"] <= previous:
                    self.fail(f"{p}.k", f"must be larger than the previous k ({previous})", point["k"])
                previous = point["k"]
            self.aggregate(point["song"], f"{p}.song", seeds)
            self.aggregate(point["block"], f"{p}.block", seeds)

    # --- the ablation table (version 2) ---------------------------------------------------
    def ablation(self, rows: Any, path: str, methods: dict) -> None:
        """Rows mirror the report's ablation table and must agree with ``methods``."""
        ran = [m for m in ABLATION_METHODS if m in methods]
        if not ran:
            if rows is not None:
                self.fail(path, "must be null when no ablation method ran", rows)
            return
        expected = [ABLATION_REFERENCE, *ran]
        names = [row.get("method") for row in rows if isinstance(row, dict)] if isinstance(rows, list) else None
        if names != expected or len(rows) != len(expected):
            self.fail(path, f"must be a list with one row per method, in order: {', '.join(expected)}", rows)
            return
        full = _song_accuracy(methods.get(ABLATION_REFERENCE))
        for i, (name, row) in enumerate(zip(names, rows)):
            p = f"{path}[{i}]"
            if not self.obj(row, p, ABLATION_KEYS):
                continue
            self.text(row["label"], f"{p}.label")
            lever = ABLATION_LEVERS.get(name)
            if row["lever"] != lever:
                self.fail(f"{p}.lever", f"must be {lever!r}" if lever else "must be null for the full configuration",
                          row["lever"])
            entry = methods.get(name)
            for key, level, metric in (("song_accuracy", "song", "accuracy"), ("song_f1", "song", "f1"),
                                       ("block_accuracy", "block", "accuracy")):
                self.stat(row[key], f"{p}.{key}", _get(entry, level, metric))
            ours = _song_accuracy(entry) if lever else {}
            diffs = [ours[seed] - full[seed] for seed in ours if seed in full]
            self.delta(row["delta_song_accuracy"], f"{p}.delta_song_accuracy", diffs)

    def stat(self, stat: Any, path: str, agg: Any) -> None:
        """``{mean, std, n_seeds}`` equal to the method's aggregate ``agg``; null when it has none."""
        if not isinstance(_get(agg, "per_seed"), dict):
            if stat is not None:
                self.fail(path, "must be null: the method has no such result", stat)
            return
        if not self.obj(stat, path, STAT_KEYS):
            return
        if self.integer(stat["n_seeds"], f"{path}.n_seeds", lo=1) and stat["n_seeds"] != len(agg["per_seed"]):
            self.fail(f"{path}.n_seeds", f"must equal the method's number of seeds ({len(agg['per_seed'])})",
                      stat["n_seeds"])
        for key in ("mean", "std"):
            if self.number(stat[key], f"{path}.{key}", lo=0, hi=1) and isinstance(agg.get(key), (int, float)) \
                    and abs(stat[key] - agg[key]) > _MEAN_TOLERANCE:
                self.fail(f"{path}.{key}", f"must equal the method's {key} ({agg[key]:.6g})", stat[key])

    def delta(self, delta: Any, path: str, diffs: list[float]) -> None:
        """Song accuracy minus the full configuration's, mean over shared seeds; null without any."""
        if not diffs:
            if delta is not None:
                self.fail(path, "must be null without seeds shared with the full configuration", delta)
            return
        expected = sum(diffs) / len(diffs)
        if self.number(delta, path, lo=-1, hi=1) and abs(delta - expected) > _MEAN_TOLERANCE:
            self.fail(path, f"must be the mean paired difference of song accuracy ({expected:.6g})", delta)


def _get(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...``, or None where a step is not an object or lacks the key."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _song_accuracy(method: Any) -> dict[str, float]:
    """{seed: song accuracy} of a method entry (numbers only; {} when it has none)."""
    per_seed = _get(method, "song", "accuracy", "per_seed")
    if not isinstance(per_seed, dict):
        return {}
    return {seed: v for seed, v in per_seed.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

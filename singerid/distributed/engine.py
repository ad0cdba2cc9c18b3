"""``embed-corpus --engine ray``: Ray Data embeds the songs, this process (the driver) stores them.

The driver triages every song as the local engine does (stored songs and unchanged earlier
failures never reach Ray),
then runs one Ray Data pipeline over the new ones: ``map_batches`` with a fixed pool of
``SongEmbedder`` actors (the model loads once per actor; a GPU each when the cluster has GPUs)
decodes, separates (for a "vocals" model), computes the log-mel blocks and embeds each song.
Results stream back to the driver as they finish and are committed through the same
``CorpusWriter`` as the local engine's, one crash-safe transaction per song, so resumability
and exactly-once rows hold as they do there: a killed driver loses only songs in flight, and a
rerun skips what was stored. An actor whose process dies is restarted and its song retried
(``max_restarts`` / ``max_task_retries``); a song that kills its worker every time stops the run
after ``max_task_retries`` retries, with everything stored so far kept.
"""

from __future__ import annotations

import logging
import re
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from singerid import errors
from singerid.distributed.actors import ModelFiles, SongEmbedder
from singerid.distributed.cluster import PoolPlan, RayConfig, import_ray, plan_pool, ray_session
from singerid.errors import SingeridError
from singerid.index.home import Home
from singerid.pipeline.common import load_embedder, resolve_model_kind
from singerid.pipeline.embed_corpus import (
    FILE_ERRORS, CorpusWriter, EmbedSummary, SongVectors, file_error, open_corpus_writer,
)
from singerid.progress import ProgressArg
from singerid.records import Track

log = logging.getLogger(__name__)

SONGS_PER_CALL = 1  # ours: one song per actor call, so a retry after a crash redoes one song
MAX_INPUT_BLOCKS = 10_000  # ours: one song per Ray block up to here; more songs share blocks (driver memory)
_RAISED = re.compile(r"^singerid\.errors\.(\w+): (.+)$", re.MULTILINE)  # an actor's error in Ray's traceback text


def embed_tracks_ray(home: Home, tracks: Sequence[Track], *, cluster: RayConfig = RayConfig(),
                     model_kind: str | None = None, db_url: str | None = None, batch_size: int = 64,
                     progress: ProgressArg = False, durable: bool = True, label: str = "embed-corpus",
                     retry_failed: bool = False, actor_class: type = SongEmbedder) -> EmbedSummary:
    """Embed ``tracks`` into the home as ``embed_tracks`` does, the work done by Ray actors.

    Same store, shards, skips, failure records and summary as the local engine (``added`` holds
    no vectors: nothing but the counts is kept in memory; ``retry_failed`` as there). ``cluster``
    says where and how wide;
    ``actor_class`` is the Ray Data callable class (``SongEmbedder`` or a subclass). Raises
    ParameterError when Ray is missing or the cluster cannot be reached, ArtefactError for the
    model as the local engine does, and SingeridError when the pipeline stops (what was stored
    stays stored; a rerun resumes).
    """
    started = time.perf_counter()
    import_ray()
    kind = resolve_model_kind(home, model_kind)
    embedder = load_embedder(home, kind)  # checked here once; the actors get its bytes
    model = ModelFiles.read(home.model_dir(kind), weights_sha256=embedder.weights_sha256)
    with open_corpus_writer(home, embedder, total=len(tracks), db_url=db_url, durable=durable, progress=progress,
                            label=label, keep_vectors=False) as writer:
        todo = _new_songs(tracks, writer, retry_failed=retry_failed)
        if todo:
            _embed_on_ray(todo, writer, model, cluster, batch_size=batch_size, actor_class=actor_class)
    return writer.summary(n_songs=len(tracks), started=started)


def _new_songs(tracks: Sequence[Track], writer: CorpusWriter, *, retry_failed: bool) -> list[tuple[Track, str]]:
    """The tracks (with their content SHA-256) to embed, triaged as the local engine does: stored
    songs and unchanged earlier failures are counted, bad files recorded; none of them reaches Ray."""
    todo = []
    for track in tracks:
        try:
            sha = writer.triage(track, retry_failed=retry_failed)
        except FILE_ERRORS as exc:
            writer.fail(str(track.path), file_error(track.path, exc))
        else:
            if sha is not None:
                todo.append((track, sha))
    return todo


def _embed_on_ray(todo: list[tuple[Track, str]], writer: CorpusWriter, model: ModelFiles, cfg: RayConfig, *,
                  batch_size: int, actor_class: type) -> None:
    """Run the pipeline over ``todo`` and commit each song as it comes back."""
    import singerid

    with ray_session(cfg) as resources:
        plan = plan_pool(cfg, resources, n_songs=len(todo))
        log.info("ray: %s for %d songs (cluster: %g CPUs, %g GPUs)", plan.describe(), len(todo),
                 resources.get("CPU", 0.0), resources.get("GPU", 0.0))
        paths = [str(Path(track.path).absolute()) for track, _ in todo]
        constructor = {"model": model, "device": plan.device, "threads": plan.cpus_per_actor,
                       "batch_size": batch_size, "version": singerid.__version__}
        for row in _reported(run_pipeline(paths, actor_class, constructor, plan, cfg), writer):
            track, sha = todo[int(row["song"])]
            if row["error"]:
                writer.fail(str(track.path), str(row["error"]))
            else:
                vectors = SongVectors(np.ascontiguousarray(row["embeddings"], dtype=np.float32),
                                      np.asarray(row["offsets_seconds"], dtype=np.float64),
                                      float(row["duration_seconds"]))
                writer.commit(track, sha, vectors)


def run_pipeline(paths: Sequence[str], actor_class: type, constructor: Mapping[str, Any], plan: PoolPlan,
                 cfg: RayConfig) -> Iterator[dict[str, Any]]:
    """The Ray Data pipeline: song ``i`` is ``paths[i]``; yields the actors' rows as they finish (any order)."""
    import ray.data

    _quiet_ray_data()
    items = [{"song": i, "path": path} for i, path in enumerate(paths)]
    ds = ray.data.from_items(items, override_num_blocks=min(len(items), MAX_INPUT_BLOCKS))
    with warnings.catch_warnings():
        # Ray 2.60 deprecates **ray_remote_args but names no replacement for the fault-tolerance settings
        warnings.filterwarnings("ignore", message=r".*ray_remote_args.* is deprecated")
        pool = ray.data.ActorPoolStrategy(size=plan.actors)
        ds = ds.map_batches(actor_class, batch_size=SONGS_PER_CALL, compute=pool, num_cpus=plan.cpus_per_actor,
                            num_gpus=plan.gpus_per_actor or None, fn_constructor_kwargs=dict(constructor),
                            max_restarts=cfg.max_restarts, max_task_retries=cfg.max_task_retries)
    yield from ds.iter_rows()


def _quiet_ray_data() -> None:
    """No progress bars and no INFO lines from Ray Data on the console (its log file keeps them)."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the writer shows singerid's own progress
    ctx.print_on_execution_start = False
    if not log.isEnabledFor(logging.DEBUG):
        for handler in logging.getLogger("ray.data").handlers:
            if type(handler).__name__ != "SessionFileHandler":
                handler.setLevel(logging.CRITICAL)


def _reported(rows: Iterator[dict[str, Any]], writer: CorpusWriter) -> Iterator[dict[str, Any]]:
    """``rows``, with what stops the pipeline turned into one SingeridError (errors of the writer pass as they are)."""
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except SingeridError:
            raise
        except Exception as exc:  # Ray wraps what stopped the pipeline: report its cause in one line
            raise _stopped(exc, writer) from exc
        yield row


def _stopped(exc: BaseException, writer: CorpusWriter) -> SingeridError:
    """The error that reports a stopped pipeline: its singerid cause (same class), else the first line of Ray's."""
    note = f"{writer.n_added:,} songs were stored before it stopped; a rerun resumes"
    cause = _singerid_cause(exc)
    if cause is not None:
        return type(cause)(f"{_first_line(cause)} ({note})")
    return SingeridError(f"the Ray pipeline stopped: {_first_line(exc)} ({note})")


def _singerid_cause(exc: BaseException) -> SingeridError | None:
    """The SingeridError that stopped the pipeline, if one did.

    Ray hands the driver its own exceptions; the actor's exception survives as an object only
    sometimes (``.cause``) and always as traceback text (``singerid.errors.ParameterError: ...``).
    """
    chain, seen = [exc], set()
    while chain:
        e = chain.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, SingeridError) and type(e).__module__.startswith("singerid"):
            return e
        found = _RAISED.search(str(e))
        kind = getattr(errors, found.group(1), None) if found else None
        if isinstance(kind, type) and issubclass(kind, SingeridError):
            return kind(found.group(2).strip())
        ray_cause = getattr(e, "cause", None)
        chain.extend([ray_cause if isinstance(ray_cause, BaseException) else None, e.__cause__, e.__context__])
    return None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__

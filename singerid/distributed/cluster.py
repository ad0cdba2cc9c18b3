"""Where the Ray pipeline runs and how wide: the settings, the session, the actor pool's size.

``ray_session`` joins a cluster (``--address``) or starts a local instance (bounded CPUs, no
dashboard, quiet logs) and shuts down only what it started; ``plan_pool`` sizes the actor pool
from the cluster's resources (a GPU per actor when it has GPUs). Ray is imported only here and
only when a session starts, so singerid imports without it.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from singerid.errors import ParameterError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'singerid[ray]'"
CONNECT_TIMEOUT_S = 5.0  # ours: a Ray head on the network answers in milliseconds
_HOST_PORT = re.compile(r"(?:ray://)?([^:/]+|\[[0-9a-fA-F:]+\]):(\d+)")


@dataclass(frozen=True, slots=True)
class RayConfig:
    """Where the pipeline runs and how wide: resources are settings, not code."""

    address: str | None = None  # None: start a local instance; "auto", "host:port", "ray://host:10001": a cluster
    num_cpus: int | None = None  # CPUs of the local instance [default: the cores this process may use]
    actors: int | None = None  # actor pool size [default: as many as the cluster's CPUs (and GPUs) hold]
    cpus_per_actor: int = 1  # CPUs reserved per actor = its torch threads
    gpus_per_actor: float | None = None  # None: 1 when the cluster has GPUs, else 0; 0.5 shares a GPU by two
    max_restarts: int = -1  # restarts of an actor whose process died (Ray Data's default: unlimited)
    max_task_retries: int = 3  # ours: retries of a song whose actor died; then the run stops (a poison file)

    def __post_init__(self) -> None:
        for name in ("num_cpus", "actors"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ParameterError(f"{name} must be >= 1, got {value}")
        if self.cpus_per_actor < 1:
            raise ParameterError(f"cpus_per_actor must be >= 1, got {self.cpus_per_actor}")
        if self.gpus_per_actor is not None and self.gpus_per_actor < 0:
            raise ParameterError(f"gpus_per_actor must be >= 0, got {self.gpus_per_actor}")


@dataclass(frozen=True, slots=True)
class PoolPlan:
    """The actor pool one run asks Ray for."""

    actors: int
    cpus_per_actor: int
    gpus_per_actor: float  # 0 = CPU actors
    device: str  # torch device inside each actor: "cpu" or "cuda" (Ray sets CUDA_VISIBLE_DEVICES)

    def describe(self) -> str:
        gpus = f" + {self.gpus_per_actor:g} GPU" if self.gpus_per_actor else ""
        return f"{self.actors} actor{'s' if self.actors != 1 else ''} x ({self.cpus_per_actor} CPU{gpus})"


def plan_pool(cfg: RayConfig, resources: Mapping[str, float], *, n_songs: int) -> PoolPlan:
    """Size the actor pool from the cluster's ``resources`` (``ray.cluster_resources()``).

    Raises ParameterError when not one actor fits, or GPUs are asked of a cluster without them.
    """
    cpus, gpus = float(resources.get("CPU", 0.0)), float(resources.get("GPU", 0.0))
    per_gpu = cfg.gpus_per_actor if cfg.gpus_per_actor is not None else (1.0 if gpus >= 1 else 0.0)
    if per_gpu > gpus:
        raise ParameterError(f"each actor asks for {per_gpu:g} GPU but the Ray cluster has {gpus:g} GPUs; "
                             "use --actor-gpus 0 for CPU actors")
    fit = int(cpus // cfg.cpus_per_actor)
    if per_gpu > 0:
        fit = min(fit, int(gpus // per_gpu))
    if fit < 1:
        raise ParameterError(f"an actor needs {cfg.cpus_per_actor} CPUs but the Ray cluster has {cpus:g}")
    actors = cfg.actors or fit
    if actors > fit:
        log.warning("%d actors asked for, but the Ray cluster holds %d now; using %d", actors, fit, fit)
        actors = fit
    return PoolPlan(max(1, min(actors, n_songs)), cfg.cpus_per_actor, per_gpu, "cuda" if per_gpu > 0 else "cpu")


def import_ray() -> Any:
    """The ``ray`` module with Ray Data; ParameterError naming the install command when missing."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise ParameterError(f"--engine ray needs Ray, which is not installed: {INSTALL_HINT}") from exc
    return ray


@contextmanager
def ray_session(cfg: RayConfig) -> Iterator[Mapping[str, float]]:
    """Connect to ``cfg.address`` or start a local instance; yields the cluster's resources.

    A session this process already holds (``ray.init`` done by the caller) is used as it is and
    left running; one started here is shut down at the end. Raises ParameterError when the
    cluster cannot be reached.
    """
    ray = import_ray()
    owned = not ray.is_initialized()
    if owned:
        _connect(ray, cfg)
    try:
        yield ray.cluster_resources()
    finally:
        if owned:
            ray.shutdown()


def _connect(ray: Any, cfg: RayConfig) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a data pipeline reports no usage
    verbose = log.isEnabledFor(logging.DEBUG)
    quiet = {"logging_level": logging.INFO if verbose else logging.ERROR, "log_to_driver": verbose}
    if cfg.address is not None:
        _check_reachable(cfg.address)
    try:
        if cfg.address is None:
            # "local", not None: None would join whatever cluster `ray start` left on this machine
            ray.init(address="local", num_cpus=cfg.num_cpus or _cores(), include_dashboard=False, **quiet)
        else:
            ray.init(address=cfg.address, **quiet)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
        where = f"the Ray cluster at {cfg.address!r}" if cfg.address else "a local Ray instance"
        raise ParameterError(f"cannot start or reach {where}: {_first_line(exc)}") from exc


def _check_reachable(address: str) -> None:
    """ParameterError at once when ``address`` ("host:port", "ray://host:port") does not answer.

    Without this check Ray retries an unreachable address for many minutes.
    """
    found = _HOST_PORT.fullmatch(address)
    if found is None:  # "auto" and other forms Ray resolves itself
        return
    host, port = found.group(1).strip("[]"), int(found.group(2))
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ParameterError(f"cannot reach the Ray cluster at {address!r}: {exc.strerror or exc}; is `ray start "
                             "--head` running there, and the port open?") from exc


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1

"""Past one machine: corpus ingest on Ray (``embed-corpus --engine ray``).

``actors`` holds the Ray Data worker (the model loads once per actor); ``cluster`` where it runs
and how wide (settings, session, pool size); ``engine`` the driver side: it filters stored
songs, runs the pipeline and commits each result through the local engine's single writer
(``singerid.pipeline.embed_corpus.CorpusWriter``). Ray is imported only when a run starts, so
this package imports without it.
"""

from singerid.distributed.cluster import PoolPlan, RayConfig, plan_pool
from singerid.distributed.engine import embed_tracks_ray

__all__ = ["PoolPlan", "RayConfig", "embed_tracks_ray", "plan_pool"]

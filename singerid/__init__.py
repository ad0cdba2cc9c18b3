"""singerid: singer identification with KNN-Net (Zhang et al. 2021) over a vector database.

    import singerid
    with singerid.open("H") as sid:
        print(sid.identify("song.mp3").singer)

The public API lives in ``singerid.api`` (open, info, enrol, remove); its results in
``singerid.results``. Heavy parts (torch, faiss, sqlalchemy) load only when first used.
"""

from typing import Any

from singerid.config import FeatureConfig, IndexConfig, ModelConfig, TrainConfig
from singerid.errors import ArtefactError, AudioError, DatasetError, ParameterError, SingeridError

__version__ = "0.1.0"

_LAZY = {  # name -> module; imported on first access so `import singerid` stays light
    "open": "singerid.api", "info": "singerid.api", "enrol": "singerid.api", "remove": "singerid.api", "probe": "singerid.api",
    "Identifier": "singerid.api", "Waveform": "singerid.audio",
    "Identification": "singerid.results", "Failure": "singerid.results", "SingerSummary": "singerid.results",
    "ChangeResult": "singerid.results", "HomeInfo": "singerid.results", "SimilarSinger": "singerid.pipeline.similar",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'singerid' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    *_LAZY,
    "ArtefactError", "AudioError", "DatasetError", "FeatureConfig", "IndexConfig", "ModelConfig",
    "ParameterError", "SingeridError", "TrainConfig", "__version__",
]

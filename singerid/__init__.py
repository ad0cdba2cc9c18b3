"""singerid: singer identification with KNN-Net (Zhang et al. 2021) over a vector database.

Small public API; heavy parts (torch, faiss, sqlalchemy) load only when used.
"""

from singerid.config import FeatureConfig, IndexConfig, ModelConfig, TrainConfig
from singerid.errors import ArtefactError, AudioError, DatasetError, ParameterError, SingeridError

__version__ = "0.1.0"

__all__ = [
    "ArtefactError", "AudioError", "DatasetError", "FeatureConfig", "IndexConfig", "ModelConfig",
    "ParameterError", "SingeridError", "TrainConfig", "__version__",
]

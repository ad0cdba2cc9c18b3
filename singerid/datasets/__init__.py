"""Dataset readers: artist20, singer32/60 and plain singer folders, as labelled, split tracks.

``load_dataset(root, kind="auto", seed=0, split="album")`` returns a ``Dataset`` whose tracks
(``singerid.records.Track``) carry path, singer, song id, album and split; ``detect_layout``
says which layout a directory has. Readers only list directories, they never decode audio.
"""

from singerid.datasets.base import KINDS, SPLIT_MODES, Dataset
from singerid.datasets.detect import detect_layout, load_dataset
from singerid.datasets.split import assign_split, split_counts

__all__ = ["KINDS", "SPLIT_MODES", "Dataset", "assign_split", "detect_layout", "load_dataset", "split_counts"]

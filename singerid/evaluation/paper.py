"""The paper's published results (Table 1 and Fig. 3), typed, with their source.

Zhang, Qian, Yu, Sun, Li, "Singer identification using deep timbre feature learning with
KNN-Net" (2021), Table 1: accuracy / precision / recall / F1 on artist20 (A20), singer32
(S32) and singer60 (S60). The paper does not name the level of Table 1; it is the song level
(§3.3: "the recognition result of an entire song can be voted from all blocks"), since its
Fig. 3 gives 0.85 mean *block*-level accuracy for the same model on artist20 where Table 1
gives 0.99. "-" in the paper (not run) is None here.
"""

from __future__ import annotations

from dataclasses import dataclass

from singerid.errors import ParameterError
from singerid.evaluation.results import PAPER_DATASETS

PAPER_CITATION = ("Zhang, Qian, Yu, Sun, Li (2021), Singer identification using deep timbre "
                  "feature learning with KNN-Net, Table 1")
PAPER_LEVEL = "song"  # inferred, see the module docstring
DATASET_ABBREVIATIONS: dict[str, str] = {"artist20": "A20", "singer32": "S32", "singer60": "S60"}

Triple = tuple[float | None, float | None, float | None]  # (A20, S32, S60)


@dataclass(frozen=True, slots=True)
class PublishedRow:
    """One row of the paper's Table 1: a method's four metrics on A20 / S32 / S60."""

    label: str  # row label as printed in the paper
    method: str | None  # our method key for this row; None for methods we do not run
    citation: str  # where the row's numbers come from
    accuracy: Triple
    precision: Triple
    recall: Triple
    f1: Triple

    def value(self, metric: str, dataset: str) -> float | None:
        """The published ``metric`` on ``dataset`` (a key of ``PAPER_DATASETS``), or None."""
        if metric not in ("accuracy", "precision", "recall", "f1"):
            raise ParameterError(f"unknown metric {metric!r}; expected accuracy, precision, recall or f1")
        if dataset not in PAPER_DATASETS:
            return None
        return getattr(self, metric)[PAPER_DATASETS.index(dataset)]


TABLE1: tuple[PublishedRow, ...] = (
    PublishedRow("i-vector", None, "Eghbal-zadeh et al. 2015 [3], via " + PAPER_CITATION,
                 accuracy=(0.85, None, None), precision=(0.86, None, None),
                 recall=(0.86, None, None), f1=(0.85, None, None)),
    PublishedRow("SVS-SID", None, "Sharma, Das, Li 2019 [6], via " + PAPER_CITATION,
                 accuracy=(0.90, None, None), precision=(None, None, None),
                 recall=(None, None, None), f1=(None, None, None)),
    PublishedRow("CRNN", "crnn", "Nasrullah & Zhao 2019 [5], run by " + PAPER_CITATION,
                 accuracy=(0.94, 0.69, 0.57), precision=(0.93, 0.72, 0.57),
                 recall=(0.93, 0.69, 0.56), f1=(0.93, 0.68, 0.51)),
    PublishedRow("Attention-CRNN", "attcrnn", PAPER_CITATION,
                 accuracy=(0.95, 0.72, 0.63), precision=(0.96, 0.75, 0.62),
                 recall=(0.95, 0.69, 0.62), f1=(0.95, 0.69, 0.58)),
    PublishedRow("Attention-CRNN-KNN", "attcrnn-knn", PAPER_CITATION,
                 accuracy=(0.99, 0.74, None), precision=(0.99, 0.76, None),
                 recall=(0.99, 0.70, None), f1=(0.99, 0.71, None)),
)

# Fig. 3: block-level confusion matrix of Attention-CRNN-KNN on artist20, "an average of 85%".
FIG3_BLOCK_ACCURACY_A20 = 0.85
FIG3_CITATION = "Zhang et al. (2021), KNN-Net, §3.4 and Fig. 3 (block level, artist20)"

# Context for the artist20 comparison (see report_md's "how to read this" note). These are
# literature figures quoted in the brief of issue 5, not numbers of this paper.
ALBUM_SPLIT_CRNN_SONG_F1 = 0.6  # careful album-split re-runs of the CRNN baseline, song level
ALBUM_SPLIT_BEST_SONG_F1 = (0.74, 0.83)  # best published album-split models, song level


def published_row(method: str) -> PublishedRow | None:
    """The paper's row for our method key, or None when the paper has no such row."""
    return next((row for row in TABLE1 if row.method == method), None)

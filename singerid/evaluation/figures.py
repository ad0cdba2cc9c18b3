"""The report's figures as PNG bytes (matplotlib, Agg canvas, no pyplot global state).

Confusion matrices (paper Fig. 3), accuracy vs K (legend beside the plot, test songs and
blocks per seed in it), per-singer F1 bars, and the 2-D timbre map of singers (t-SNE of test
block embeddings, paper Fig. 2; every point a block). Each function returns PNG bytes.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence

import numpy as np

from singerid.evaluation.results import ABLATION_METHODS, K_VALUES, KNN_METHODS, TimbreSample
from singerid.evaluation.summary import DatasetSummary
from singerid.evaluation.tables import METHOD_LABELS, count_range

log = logging.getLogger(__name__)

DPI = 100
# Kelly's 22 colours of maximum contrast, without white and black: 20 hues that stay apart.
KELLY_COLOURS: tuple[str, ...] = (
    "#F3C300", "#875692", "#F38400", "#A1CAF1", "#BE0032", "#C2B280", "#848482", "#008856",
    "#E68FAC", "#0067A5", "#F99379", "#604E97", "#F6A600", "#B3446C", "#DCD300", "#882D17",
    "#8DB600", "#654522", "#E25822", "#2B3D26",
)
MARKERS: tuple[str, ...] = ("o", "^", "s", "D", "v", "P")  # beyond 20 singers: colour x marker
METHOD_COLOURS: dict[str, str] = {"crnn": "#0067A5", "attcrnn": "#008856", "attcrnn-knn": "#BE0032",
                                  "crnn-knn": "#F38400", "mfcc-logreg": "#848482", "voice": "#875692",
                                  "voice-knn": "#882D17", "ge2e-knn": "#8DB600", "voice-knn-clean": "#E25822",
                                  "mfcc-logreg-clean": "#C2B280"}
OTHER_COLOUR = "#555555"  # ablation rows (shown in their own table, not in the figures)


def singer_styles(n: int) -> list[tuple[str, str]]:
    """(colour, marker) for ``n`` singers: 20 distinct colours, then the next marker shape."""
    return [(KELLY_COLOURS[i % len(KELLY_COLOURS)], MARKERS[(i // len(KELLY_COLOURS)) % len(MARKERS)])
            for i in range(n)]


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def confusion_png(matrix: np.ndarray, labels: Sequence[str], *, title: str) -> bytes:
    """Row-normalised confusion matrix (rows = true singer, columns = predicted).

    ``matrix``: int (n, n) counts. Cells show the share of the true singer's items; with
    up to 25 singers the non-zero shares are printed in the cells.
    """
    counts = np.asarray(matrix, dtype=np.float64)
    n = len(labels)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    side = max(5.0, 0.32 * n + 2.5)
    fig = _figure(side + 1.0, side)
    ax = fig.add_subplot()
    image = ax.imshow(share * 100.0, cmap="Blues", vmin=0.0, vmax=100.0)
    fig.colorbar(image, ax=ax, shrink=0.7, label="% of the true singer's items")
    size = 8 if n <= 30 else 6
    ax.set_xticks(range(n), labels, rotation=90, fontsize=size)
    ax.set_yticks(range(n), labels, fontsize=size)
    ax.set_xlabel("predicted singer")
    ax.set_ylabel("true singer")
    present = rows[:, 0] > 0
    diagonal = float(np.diag(share)[present].mean()) if present.any() else 0.0
    ax.set_title(f"{title}\nmean of the diagonal (per-singer recall): {diagonal * 100:.0f}%", fontsize=10)
    if n <= 25:
        cell_size = 9 if n <= 10 else (7 if n <= 18 else 6)
        for i in range(n):
            for j in range(n):
                if share[i, j] >= 0.005:
                    ax.text(j, i, f"{share[i, j] * 100:.0f}", ha="center", va="center", fontsize=cell_size,
                            color="white" if share[i, j] > 0.55 else "black")
    return _png(fig)


def accuracy_vs_k_png(s: DatasetSummary) -> bytes | None:
    """Song (solid) and block (dashed) accuracy of each KNN method vs K, ± std; None if no data.

    The legend sits beside the axes (never over a curve) and gives each curve's sample size:
    test songs or blocks per seed (a range when seeds differ).
    """
    methods = [m for m in (s.method(k) for k in KNN_METHODS if k not in ABLATION_METHODS)
               if m is not None and m.accuracy_vs_k]
    if not methods:
        return None
    fig = _figure(10.0, 4.2)
    ax = fig.add_subplot()
    for m in methods:
        ks = np.array([p.k for p in m.accuracy_vs_k])
        for level, style in (("song", "-o"), ("block", "--s")):
            mean = np.array([getattr(p, level).mean for p in m.accuracy_vs_k])
            std = np.array([getattr(p, level).std for p in m.accuracy_vs_k])
            colour = METHOD_COLOURS.get(m.method, OTHER_COLOUR)
            items = m.song if level == "song" else m.block
            n = count_range([count for _, count in items.n_items]) if items is not None else "?"
            ax.plot(ks, mean, style, color=colour, markersize=4,
                    label=f"{METHOD_LABELS[m.method]}, {level} (n = {n} {level}s)")
            ax.fill_between(ks, mean - std, mean + std, color=colour, alpha=0.15, linewidth=0)
    ax.axvline(11, color="black", linestyle=":", linewidth=1)
    ax.text(11, 0.98, " K = 11 (paper)", fontsize=8, va="top")
    ax.set_xscale("log")
    ax.set_xticks(K_VALUES, [str(k) for k in K_VALUES])
    ax.minorticks_off()
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("K (nearest reference blocks per query block)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{s.key}: accuracy vs K, mean ± std over {len(s.result.seeds)} seed(s)\n{s.result.split_rule}",
                 fontsize=9)
    ax.grid(alpha=0.3)
    fig.legend(fontsize=8, loc="outside right upper", title="n = test items per seed", title_fontsize=8)
    return _png(fig)


def per_singer_f1_png(s: DatasetSummary, level: str = "song") -> bytes | None:
    """One panel per method: a horizontal bar per singer with its F1 (± std over seeds)."""
    methods = [m for m in s.methods if (m.singers_song if level == "song" else m.singers_block)
               and m.method not in ABLATION_METHODS]
    if not methods:
        return None
    singers = s.result.singers
    fig = _figure(1.6 + 2.2 * len(methods), 1.2 + 0.22 * len(singers))
    axes = fig.subplots(1, len(methods), sharey=True, squeeze=False)[0]
    y = np.arange(len(singers))
    for ax, m in zip(axes, methods):
        rows = m.singers_song if level == "song" else m.singers_block
        ax.barh(y, [r.f1.mean for r in rows], xerr=[r.f1.std for r in rows], color=METHOD_COLOURS.get(m.method, OTHER_COLOUR),
                error_kw={"elinewidth": 0.8, "ecolor": "#444444"}, height=0.7)
        ax.set_xlim(0.0, 1.0)
        ax.set_title(METHOD_LABELS[m.method], fontsize=9)
        ax.set_xlabel("F1")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, singers, fontsize=8 if len(singers) <= 30 else 6)
    axes[0].set_ylim(len(singers) - 0.5, -0.5)  # first singer on top, no empty margin
    fig.suptitle(f"{s.key}: per-singer F1, {level} level", fontsize=10)
    return _png(fig)


def sample_timbre(sample: TimbreSample) -> tuple[np.ndarray, np.ndarray]:
    """At most ``sample.max_points`` rows, spread evenly over singers, drawn with ``sample.seed``.

    Returns (float32 (m, d) L2-normalised embeddings, object (m,) singer names).
    """
    rng = np.random.default_rng(sample.seed)
    names = sorted(set(sample.singers.tolist()))
    quota = max(1, sample.max_points // len(names))
    keep = []
    for name in names:
        rows = np.flatnonzero(sample.singers == name)
        keep.append(rng.choice(rows, size=min(quota, rows.size), replace=False))
    idx = np.sort(np.concatenate(keep))[: sample.max_points]
    emb = sample.embeddings[idx]
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return (emb / np.maximum(norms, 1e-12)).astype(np.float32), sample.singers[idx]


def timbre_map_png(sample: TimbreSample) -> bytes:
    """t-SNE of block embeddings: every point one block (of the test songs, as ``evaluate`` gives
    them), one colour per singer, singer names at their medians; a legend says what a point is."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    emb, singers = sample_timbre(sample)
    perplexity = float(min(30.0, max(2.0, (len(emb) - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=sample.seed)
    with threadpool_limits(limits=1):  # OpenMP spin-waiting on a busy 2-core machine costs 5x
        xy = tsne.fit_transform(emb)
    names = sorted(set(singers.tolist()))
    styles = singer_styles(len(names))
    side = 9.0 if len(names) <= 30 else 12.0
    fig = _figure(side, side - 1.0)
    ax = fig.add_subplot()
    centroids = []
    point_size = 28.0 if len(emb) <= 500 else (16.0 if len(emb) <= 1500 else 10.0)  # visible, not a blur
    for name, (colour, marker) in zip(names, styles):
        pts = xy[singers == name]
        ax.scatter(pts[:, 0], pts[:, 1], s=point_size, c=colour, marker=marker, alpha=0.8, linewidths=0.3,
                   edgecolors="white")
        centroids.append(np.median(pts, axis=0))
    centroids = np.array(centroids)
    span = float(np.ptp(xy, axis=0).max()) or 1.0
    # labels sit a little above their centroid (marked with a black-edged dot) so points stay visible
    labels_at = _spread_labels(centroids + np.array([0.0, 0.035 * span]), span * 0.06)
    for name, (colour, marker), c, pos in zip(names, styles, centroids, labels_at):
        ax.plot([c[0], pos[0]], [c[1], pos[1]], color="#555555", linewidth=0.6, zorder=3)
        ax.scatter([c[0]], [c[1]], s=45, c=colour, marker=marker, edgecolors="black", linewidths=0.8, zorder=4)
        ax.text(pos[0], pos[1], name, fontsize=8 if len(names) <= 30 else 6, ha="center", va="bottom", zorder=5,
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": colour, "alpha": 0.8})
    ax.set_xticks([])
    ax.set_yticks([])
    from matplotlib.lines import Line2D

    songs = f" of {sample.n_songs:,} {sample.split} songs" if sample.n_songs else ""
    what = [Line2D([], [], linestyle="", marker="o", markersize=5, color="#888888",
                   label=f"one 1-s {sample.split} block ({len(emb):,} blocks{songs}), coloured by its true singer"),
            Line2D([], [], linestyle="", marker="o", markersize=7, color="#888888", markeredgecolor="black",
                   label="a singer's median block, with its name")]
    ax.legend(handles=what, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=2, frameon=False)
    ax.set_title(f"{sample.dataset}: timbre map of singers — t-SNE of {len(emb):,} {sample.split} blocks "
                 f"({sample.method} embeddings, seed {sample.seed})", fontsize=10)
    return _png(fig)


def _spread_labels(points: np.ndarray, min_dist: float, iterations: int = 200) -> np.ndarray:
    """Nudge label positions apart until no two are closer than ``min_dist`` (data units)."""
    pos = points.astype(np.float64).copy()
    angles = np.arange(len(pos), dtype=np.float64)  # deterministic jitter separates equal points
    pos += min_dist * 1e-3 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    for _ in range(iterations):
        diff = pos[:, None, :] - pos[None, :, :]
        dist = np.linalg.norm(diff, axis=2) + np.eye(len(pos))
        close = dist < min_dist
        if not close.any():
            break
        push = np.where(close[..., None], diff / np.maximum(dist[..., None], 1e-9) * (min_dist - dist)[..., None], 0.0)
        pos += 0.5 * push.sum(axis=1)
    return pos

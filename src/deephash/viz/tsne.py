"""t-SNE plots of a class-stratified sample of embeddings or codes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deephash.viz._mpl import plt, save_figure

__all__ = ["plot_tsne", "stratified_sample"]


def stratified_sample(labels: np.ndarray, n: int, *, seed: int = 0) -> np.ndarray:
    """Indices of about ``n`` items, the same number per class (as far as classes allow).

    labels: int (N,). Returns int64 sorted indices, at most ``min(n, N)`` of them.
    """
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels), dtype=np.int64)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = max(1, n // len(classes))
    chosen: list[np.ndarray] = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        chosen.append(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def plot_tsne(
    points: np.ndarray,
    labels: np.ndarray,
    path: str | os.PathLike[str],
    *,
    class_names: Sequence[str] | None = None,
    num_samples: int = 2000,
    title: str = "t-SNE",
    seed: int = 0,
    perplexity: float = 30.0,
) -> Path:
    """Run t-SNE on a class-stratified sample and save a scatter plot coloured by class.

    points: float (N, D) embeddings, or ±1 / 0-1 codes (treated as float). labels: int (N,).
    Returns the PNG path. Uses scikit-learn's exact-gradient-free Barnes–Hut t-SNE with PCA init.
    """
    from sklearn.manifold import TSNE

    points = np.asarray(points, dtype=np.float32)
    labels = np.asarray(labels)
    if points.ndim != 2 or len(points) != len(labels):
        raise ValueError(
            f"points must be (N, D) with N == len(labels); got {points.shape}, {labels.shape}"
        )
    idx = stratified_sample(labels, num_samples, seed=seed)
    x, y = points[idx], labels[idx]
    perplexity = float(min(perplexity, max(2.0, (len(x) - 1) / 3)))
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    fig, ax = plt.subplots(figsize=(7, 6))
    classes = np.unique(y)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for i, c in enumerate(classes):
        m = y == c
        name = (
            class_names[int(c)] if class_names is not None and int(c) < len(class_names) else str(c)
        )
        ax.scatter(xy[m, 0], xy[m, 1], s=4, color=cmap(i % cmap.N), label=name)
    if len(classes) <= 20:
        ax.legend(markerscale=3, fontsize=8, loc="best", frameon=True)
    ax.set_title(f"{title} ({len(x)} points)")
    ax.set_xticks([])
    ax.set_yticks([])
    return save_figure(fig, path)

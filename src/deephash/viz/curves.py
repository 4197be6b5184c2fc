"""Line plots: training history, validation mAP against wall time, PR curves, mAP against bits."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from deephash.viz._mpl import plt, save_figure

__all__ = [
    "plot_map_vs_bits",
    "plot_precision_recall",
    "plot_training_history",
    "plot_validation_vs_time",
]


def plot_training_history(
    history: Sequence[Mapping[str, float]], path: str | os.PathLike[str]
) -> Path:
    """Loss, active-triplet fraction and validation mAP per epoch (one row of ``history.jsonl`` each)."""
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    for ax, key, label in zip(
        axes,
        ["loss", "active_fraction", "val_map"],
        ["training loss", "active fraction", "validation mAP"],
    ):
        vals = [h.get(key) for h in history]
        pts = [(e, v) for e, v in zip(epochs, vals) if v is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o")
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_validation_vs_time(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | os.PathLike[str]
) -> Path:
    """Validation mAP against cumulative training seconds, one line per recipe.

    curves: name -> (seconds, val_map) sequences of equal length.
    """
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, (secs, vals) in curves.items():
        ax.plot(secs, vals, marker=".", label=name)
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("validation mAP")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # runs without validation draw no line
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_precision_recall(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike[str],
    *,
    title: str = "",
) -> Path:
    """Precision–recall curves: name -> (precision, recall) arrays."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, (precision, recall) in curves.items():
        ax.plot(recall, precision, marker=".", label=name)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def plot_map_vs_bits(
    results: Mapping[str, Mapping[int, tuple[float, float]]], path: str | os.PathLike[str]
) -> Path:
    """mAP (mean ± std) against code length: method -> {bits: (mean, std)}."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, by_bits in results.items():
        bits = sorted(by_bits)
        mean = [by_bits[b][0] for b in bits]
        std = [by_bits[b][1] for b in bits]
        ax.errorbar(bits, mean, yerr=std, marker="o", capsize=3, label=name)
    ax.set_xlabel("bits")
    ax.set_ylabel("mAP")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_protocol_scatter(
    points: Mapping[str, tuple[float, float]],
    path: str | os.PathLike[str],
    *,
    xlabel: str,
    ylabel: str,
) -> Path:
    """One labelled point per recipe: name -> (mAP under one protocol, mAP under another), e.g.
    seen classes (x) against classes never seen in training (y), with the diagonal for reference."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    for name, (x, y) in points.items():
        ax.scatter([x], [y], s=25)
        ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    # mAP lies in [0, 1]: the diagonal spans that range at least
    values = [0.0, 1.0, *(v for xy in points.values() for v in xy)]
    lo, hi = min(values), max(values)
    ax.plot([lo, hi], [lo, hi], color="0.7", linewidth=0.8, linestyle="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)

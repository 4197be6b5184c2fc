"""Plots: t-SNE of embeddings/codes, precision–recall curves, training curves, mAP-vs-time/bits, mAP by protocol."""

from deephash.viz.curves import (
    plot_map_vs_bits,
    plot_precision_recall,
    plot_protocol_scatter,
    plot_training_history,
    plot_validation_vs_time,
)
from deephash.viz.tsne import plot_tsne, stratified_sample

__all__ = [
    "plot_map_vs_bits",
    "plot_precision_recall",
    "plot_protocol_scatter",
    "plot_training_history",
    "plot_tsne",
    "plot_validation_vs_time",
    "stratified_sample",
]

"""Losses: every loss is created by name, ``create_loss(name, **options)``; see ``list_losses()``.

Metric-learning losses defined here: ``contrastive``, ``triplet-margin``, ``hoffer``,
``batch-hard``, ``batch-all``, ``cross-entropy``, ``norm-softmax``, ``multi-similarity``,
``proxy-anchor``, ``arcface``; hashing: ``csq`` (hash centres), ``dtsh``, ``dnnh``, ``dsh``,
``triplet-quant``, and ``bit-bce`` (step 2 of two-step hashing). Triplet/pair losses take a
miner (object or name, see ``deephash.miners``) and also accept given indices through
``compute_triplets`` / ``compute_pairs`` (offline sampling).
"""

from deephash.distances import Distance, pairwise_distances
from deephash.losses.arcface import ArcFaceLoss
from deephash.losses.base import LossOutput, MetricLoss, create_loss, list_losses, register_loss
from deephash.losses.batch_all import BatchAllLoss
from deephash.losses.batch_hard import BatchHardLoss
from deephash.losses.bit_bce import BitBCELoss, TwoStepTargets
from deephash.losses.combined import CombinedLoss
from deephash.losses.contrastive import ContrastiveLoss
from deephash.losses.cross_entropy import CrossEntropyLoss
from deephash.losses.csq import CSQLoss, hash_centers

# Deep-hashing losses register themselves on import.
from deephash.losses.dnnh import DNNHLoss
from deephash.losses.dsh import DSHLoss
from deephash.losses.dtsh import DTSHLoss
from deephash.losses.hoffer import HofferLoss
from deephash.losses.multi_similarity import MultiSimilarityLoss
from deephash.losses.norm_softmax import NormSoftmaxLoss
from deephash.losses.proxy_anchor import ProxyAnchorLoss
from deephash.losses.quantization import TripletQuantizationLoss
from deephash.losses.triplet_margin import TripletMarginLoss

__all__ = [
    "ArcFaceLoss",
    "BatchAllLoss",
    "BatchHardLoss",
    "BitBCELoss",
    "CSQLoss",
    "CombinedLoss",
    "ContrastiveLoss",
    "CrossEntropyLoss",
    "DNNHLoss",
    "DSHLoss",
    "DTSHLoss",
    "Distance",
    "HofferLoss",
    "LossOutput",
    "MetricLoss",
    "MultiSimilarityLoss",
    "NormSoftmaxLoss",
    "ProxyAnchorLoss",
    "TripletMarginLoss",
    "TripletQuantizationLoss",
    "TwoStepTargets",
    "create_loss",
    "hash_centers",
    "list_losses",
    "pairwise_distances",
    "register_loss",
]

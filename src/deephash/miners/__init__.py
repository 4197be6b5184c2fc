"""Online miners: pick informative triplets or pairs inside a batch, without gradient.

``create_miner(name, **options)`` builds a triplet miner, ``list_miners()`` lists them:
``all``, ``hardest``, ``random-hard``, ``semi-hard``, ``batch-hard``, ``distance-weighted``,
``curriculum``. ``create_pair_miner`` / ``list_pair_miners``: ``all-pairs``, ``hard-pairs``,
``multi-similarity``.
Call a miner as ``miner(embeddings (B, D), labels (B,)) -> Triplets`` (or ``Pairs``).
"""

from deephash.miners.all_triplets import AllTripletsMiner
from deephash.miners.base import (
    MiningBatch,
    PairMiner,
    Pairs,
    TripletMiner,
    Triplets,
    create_miner,
    create_pair_miner,
    list_miners,
    list_pair_miners,
    miner_options,
    register_miner,
    register_pair_miner,
)
from deephash.miners.batch_hard import BatchHardMiner
from deephash.miners.curriculum import CurriculumMiner
from deephash.miners.distance_weighted import DistanceWeightedMiner
from deephash.miners.hardest import HardestNegativeMiner
from deephash.miners.multi_similarity import MultiSimilarityMiner
from deephash.miners.pairs import AllPairsMiner, HardPairsMiner
from deephash.miners.random_hard import RandomHardMiner
from deephash.miners.semi_hard import SemiHardMiner

__all__ = [
    "AllPairsMiner",
    "AllTripletsMiner",
    "BatchHardMiner",
    "CurriculumMiner",
    "DistanceWeightedMiner",
    "HardPairsMiner",
    "HardestNegativeMiner",
    "MiningBatch",
    "MultiSimilarityMiner",
    "PairMiner",
    "Pairs",
    "RandomHardMiner",
    "SemiHardMiner",
    "TripletMiner",
    "Triplets",
    "create_miner",
    "create_pair_miner",
    "list_miners",
    "list_pair_miners",
    "miner_options",
    "register_miner",
    "register_pair_miner",
]

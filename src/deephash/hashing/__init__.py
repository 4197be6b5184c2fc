"""Classical hashing baselines, two-step code inference and code diagnostics."""

from deephash.hashing.bit_stats import (
    BitStats,
    bit_balance,
    bit_correlation,
    bit_stats,
    distinct_code_fraction,
)
from deephash.hashing.code_usage import CodeUsage, bit_entropy, code_usage
from deephash.hashing.itq import ITQ
from deephash.hashing.lsh import LSH
from deephash.hashing.two_step import (
    TripletCodeInference,
    sample_triplets,
    triplet_satisfaction,
)

__all__ = [
    "ITQ",
    "LSH",
    "BitStats",
    "CodeUsage",
    "TripletCodeInference",
    "bit_balance",
    "bit_correlation",
    "bit_entropy",
    "bit_stats",
    "code_usage",
    "distinct_code_fraction",
    "sample_triplets",
    "triplet_satisfaction",
]

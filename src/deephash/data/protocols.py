"""Named, seeded retrieval protocols: fixed train / validation / query / database index sets.

The pieces live in files named after them: :mod:`~deephash.data.protocol` (the Protocol type),
:mod:`~deephash.data.protocol_catalogue` (the named protocols), :mod:`~deephash.data.protocol_options`
(defaults and overrides), :mod:`~deephash.data.protocol_sampling` (seeded draws) and
:mod:`~deephash.data.protocol_builder` (:func:`create_protocol`); this module gathers them.

Indices point into a dataset's pool (official train images first, then test; see
:func:`deephash.data.datasets.load_dataset`). Rules every protocol obeys (checked on load):
query is disjoint from train, validation and database; train and validation are disjoint. The
validation split is for model selection only: validation queries retrieve against the train split
(``val_database``), never against the test query set.

Two shapes:

* ``official`` (mnist, fashion-mnist, kmnist, cifar10-s2, cifar100, cub200, dogs): query = the
  official test images, database = the official training images, validation = a stratified slice
  of the training images, train = the training images minus validation. For cub200 and dogs this is
  the usual fine-grained hashing setup (training set as database, test set as queries).
* ``sampled`` (cifar10-s1, folder): query = a stratified sample of the whole pool; train = a
  stratified sample of the rest (or all of it); database = every non-query image (including train,
  the usual CIFAR-10 "setting 1": 1,000 / 5,000 / 59,000; ``database_includes_train=False`` gives the
  54,000-image variant). When train is a sample, validation comes from the non-train rest, so train
  keeps its conventional size.

``class_disjoint=True`` trains (and validates) on ``train_classes`` (a count drawn with the seed, a
list of class ids; default 75% of the classes, as in Sablayrolles et al., "How should we evaluate
supervised hashing?", ICASSP 2017) and puts query and database on the other classes only. With it:

* ``retrieval="leave-one-out"``: the metric-learning shape, every image of the test classes queries
  all the others (query = database = the query and database images of the split shape; the
  evaluation leaves each query out of its own ranking).
* ``validation_folds=k`` (``validation_fold=i``): class-disjoint validation, as in Musgrave,
  Belongie & Lim, "A Metric Learning Reality Check" (ECCV 2020): the training classes are split
  into k seeded folds of consecutive sizes (smaller folds first) and fold i is held out of the
  gradient steps; its images are the validation set, which validates leave-one-out (validation
  queries retrieve the other held-out images, ``val_database`` = validation). This measures what the
  test measures: retrieval among classes the model did not train on.
* ``train_images``: which official split's images of the training classes are trained on,
  ``train`` (the standard protocols' training images) or ``all`` (both splits, the metric-learning
  convention for CUB-200-2011 and Stanford Dogs).

The named unseen-class protocols (``fashion-mnist-unseen``, ``cifar10-unseen``,
``cifar100-unseen``, ``cub200-unseen``, ``dogs-unseen``) are these options with fixed training
classes (the first half), so their test classes never depend on the seed.
"""

from __future__ import annotations

from deephash.data.protocol import FORMAT, SPLITS, VERSION, Protocol, labels_digest
from deephash.data.protocol_builder import create_protocol
from deephash.data.protocol_catalogue import (
    RETRIEVAL_SHAPES,
    TRAIN_IMAGES,
    ProtocolSpec,
    default_protocol,
    list_protocols,
    protocol_spec,
)

__all__ = [
    "FORMAT",
    "RETRIEVAL_SHAPES",
    "SPLITS",
    "TRAIN_IMAGES",
    "VERSION",
    "Protocol",
    "ProtocolSpec",
    "create_protocol",
    "default_protocol",
    "labels_digest",
    "list_protocols",
    "protocol_spec",
]

"""deephash.data: dataset readers, locations and downloads, seeded protocols, P x K sampling, transforms."""

from deephash.data.batches import Batch, Batches
from deephash.data.cifar import read_cifar10, read_cifar100, read_cifar_batch
from deephash.data.cub import index_cub200, read_cub200
from deephash.data.dataset import ArrayDataset, PooledDataset
from deephash.data.datasets import (
    DatasetInfo,
    DatasetLabels,
    dataset_info,
    list_datasets,
    load_dataset,
    load_dataset_labels,
)
from deephash.data.dogs import index_stanford_dogs, read_stanford_dogs
from deephash.data.download import download_dataset, download_file, extract_archive, fetch_url
from deephash.data.idx import read_idx, read_mnist_like
from deephash.data.image_folder import (
    decode_image,
    decode_images,
    list_image_folder,
    read_image_folder,
)
from deephash.data.locations import (
    DatasetNotFoundError,
    download_dir,
    find_dataset,
    search_paths,
    user_cache_dir,
)
from deephash.data.pk_sampler import PKSampler
from deephash.data.protocol import Protocol
from deephash.data.protocol_builder import create_protocol
from deephash.data.protocol_catalogue import default_protocol, list_protocols
from deephash.data.protocol_data import ProtocolData, load_protocol_data
from deephash.data.transforms import (
    BatchTransform,
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    Resize,
    ToFloat,
    batch_to_tensor,
    batch_transform,
    build_transform,
    channel_stats,
    resize_images,
)

__all__ = [
    "ArrayDataset",
    "Batch",
    "BatchTransform",
    "Batches",
    "Compose",
    "DatasetInfo",
    "DatasetLabels",
    "DatasetNotFoundError",
    "Normalize",
    "PKSampler",
    "PooledDataset",
    "Protocol",
    "ProtocolData",
    "RandomCrop",
    "RandomHorizontalFlip",
    "Resize",
    "ToFloat",
    "batch_to_tensor",
    "batch_transform",
    "build_transform",
    "channel_stats",
    "create_protocol",
    "dataset_info",
    "decode_image",
    "decode_images",
    "default_protocol",
    "download_dataset",
    "download_dir",
    "download_file",
    "extract_archive",
    "fetch_url",
    "find_dataset",
    "index_cub200",
    "index_stanford_dogs",
    "list_datasets",
    "list_image_folder",
    "list_protocols",
    "load_dataset",
    "load_dataset_labels",
    "load_protocol_data",
    "read_cifar10",
    "read_cifar100",
    "read_cifar_batch",
    "read_cub200",
    "read_idx",
    "read_image_folder",
    "read_mnist_like",
    "read_stanford_dogs",
    "resize_images",
    "search_paths",
    "user_cache_dir",
]

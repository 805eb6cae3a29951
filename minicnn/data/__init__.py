"""Datasets: loading the original files (verified by checksum), batching and augmentation.

    from minicnn.data import load_dataset, iterate_batches
    ds = load_dataset("mnist")            # also "fashion-mnist", "cifar10", "my_data.npz" or "photos/"
    img, notes = load_image("my_digit.jpg", shape=(1, 28, 28))   # a user's picture as model input
    ds.x_train  # (60000, 1, 28, 28) float32 in [0, 1];  ds.y_train  # (60000,) int64
    for b, xb, yb in iterate_batches(ds.x_train, ds.y_train, 64, seed=0, epoch=0): ...

See `datasets.py` for where files are looked for, and `datasets/README.md` at the top of the project.
"""

from .batching import (
    crop_flip,
    epoch_order,
    iterate_batches,
    num_batches,
    random_crop,
    random_hflip,
    shift,
    standardize,
)
from .datasets import (
    SOURCES,
    ChecksumError,
    Dataset,
    DatasetError,
    DatasetFormatError,
    cache_dir,
    load_dataset,
    load_image_folder,
    read_checksums,
    search_roots,
    verify_file,
)
from .folder import FolderError
from .images import ImageError, load_image
from .readers import DataFormatError, read_cifar10, read_dataset_npz, read_idx
from .segmentation import TASKS as SEGMENTATION_TASKS  # registers the tasks with load_dataset

__all__ = [
    "SEGMENTATION_TASKS", "SOURCES",
    "ChecksumError", "DataFormatError", "Dataset", "DatasetError", "DatasetFormatError", "FolderError",
    "ImageError", "cache_dir", "crop_flip", "epoch_order", "iterate_batches", "load_dataset", "load_image",
    "load_image_folder", "num_batches", "random_crop", "random_hflip", "read_checksums", "read_cifar10",
    "read_dataset_npz", "read_idx", "search_roots", "shift", "standardize", "verify_file",
]

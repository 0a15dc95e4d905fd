"""Datasets: generation over a twin's input domain, and the checksummed store.

Public names:

* :func:`generate_dataset`: draw, solve (in parallel with Dask) and store a dataset,
  resuming an interrupted run; :func:`sampled_domain` narrows a twin's domain.
* :func:`open_dataset` and :class:`Dataset`: read a finished dataset, verifying its
  checksums; :class:`DatasetWriter`: the atomic, resumable shard writer beneath.
* :class:`DatasetConfig`: the ``configs/datasets/*.yaml`` model.
"""

from medtwin_ml.datasets.config import DatasetConfig
from medtwin_ml.datasets.generate import case_inputs, generate_dataset, sampled_domain
from medtwin_ml.datasets.store import (
    Dataset,
    DatasetWriter,
    ShardSpan,
    dataset_checksum,
    open_dataset,
    plan_shards,
)

__all__ = [
    "Dataset",
    "DatasetConfig",
    "DatasetWriter",
    "ShardSpan",
    "case_inputs",
    "dataset_checksum",
    "generate_dataset",
    "open_dataset",
    "plan_shards",
    "sampled_domain",
]

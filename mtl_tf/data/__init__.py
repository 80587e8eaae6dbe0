"""Data: dataset.json (the contract), tf.Example parsing and the tf.data reader."""

from mtl_tf.data.spec import DatasetSpec

__all__ = ["DatasetSpec"]

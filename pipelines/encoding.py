"""One parsed row to a serialized ``tf.Example`` (layout: :mod:`mtl_tf.data.spec`).

The Python type of a value picks the list: ``float`` -> float_list, ``int`` -> int64_list,
``str`` -> bytes_list, ``list[float]`` -> float_list. Missing values are absent from the row
and so absent from the example, which the readers parse as NaN, -1 or "".
"""

from __future__ import annotations

from typing import Any, Mapping

from tensorflow.core.example import example_pb2


def encode_example(values: Mapping[str, Any]) -> bytes:
    """Serializes ``values`` (tf.Example key -> typed value) as a ``tf.Example``.

    Args:
        values: the typed values of one row, as :class:`pipelines.rows.RowParser` returns them.

    Returns:
        The serialized example.
    """
    example = example_pb2.Example()
    features = example.features.feature
    for key, value in values.items():
        if isinstance(value, float):
            features[key].float_list.value.append(value)
        elif isinstance(value, int):
            features[key].int64_list.value.append(value)
        elif isinstance(value, str):
            features[key].bytes_list.value.append(value.encode("utf-8"))
        elif isinstance(value, list):
            features[key].float_list.value.extend(value)
        else:
            raise TypeError(f"cannot encode '{key}' = {value!r} of type {type(value).__name__}; "
                            "allowed: float, int, str, list[float]")
    return example.SerializeToString()

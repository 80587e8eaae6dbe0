"""One parsed row to a serialized ``tf.Example`` (layout: :mod:`mtl_tf.data.spec`).

The Python type of a value picks the list: ``float`` -> float_list, ``int`` -> int64_list,
``str`` -> bytes_list (UTF-8), ``bytes`` -> bytes_list (as is), ``list[float]`` -> float_list,
:class:`Int64List` -> int64_list (an empty one is an empty int64_list, not a float_list). Missing values are absent from the row
and so absent from the example, which the readers parse as NaN, -1 or "".
:func:`tfrecord_frames` frames serialized examples for a TFRecord file.

The protobuf wire format of ``tf.Example`` is written directly, with no TensorFlow import:
importing TensorFlow takes seconds, which every Beam worker process would pay, and the
direct encoding is also faster than building the message. The bytes parse to the same
``tf.Example`` that TensorFlow's own classes build (the tests check it).
"""

from __future__ import annotations

import struct
import sys
from array import array
from typing import Any, Iterable, Mapping

# tf.Example field tags (field number << 3 | wire type 2, length-delimited).
_ENTRY = b"\n"        # Example.features, Features.feature (a map entry), map key, *List.value
_VALUE = b"\x12"      # map entry value
_BYTES_LIST = b"\n"   # Feature.bytes_list
_FLOAT_LIST = b"\x12"  # Feature.float_list
_INT64_LIST = b"\x1a"  # Feature.int64_list
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_SWAP_FLOATS = sys.byteorder != "little"  # the wire format is little-endian
_FLOAT32 = struct.Struct("<f")
_FLOAT32_MAX = 3.4028234663852886e38
_FLOAT_VALUE = b"\x12\x08\x12\x06\n\x04"  # value: Feature{float_list: FloatList{value: [4 bytes]}}
_KEY_FIELDS: dict[str, bytes] = {}


class Int64List(list):
    """A list of ints written as one int64_list (a plain list of numbers is a float_list)."""


def encode_example(values: Mapping[str, Any]) -> bytes:
    """Serializes ``values`` (tf.Example key -> typed value) as a ``tf.Example``.

    Args:
        values: the typed values of one row, as :class:`pipelines.rows.RowParser` returns them.

    Returns:
        The serialized example.

    Raises:
        TypeError: a value is not a float, int, str, bytes, list of numbers or :class:`Int64List`.
        ValueError: an int does not fit in int64.
    """
    parts = []
    for key, value in values.items():
        prefix = _KEY_FIELDS.get(key) or _key_field(key)
        kind = type(value)
        # Fast paths for the common exact types, with their nested lengths written as single
        # varint bytes; anything else (float32 overflow too, which protobuf stores as inf)
        # goes through the general _feature.
        if kind is float and -_FLOAT32_MAX <= value <= _FLOAT32_MAX:
            entry = prefix + _FLOAT_VALUE + _FLOAT32.pack(value)
        else:
            if kind is str:
                tag, payload = _BYTES_LIST, value.encode("utf-8")
            elif kind is int and 0 <= value <= _INT64_MAX:
                tag, payload = _INT64_LIST, _varint(value)
            elif kind is list and value and all(type(v) is float for v in value):
                tag, payload = _FLOAT_LIST, _floats(value)
            else:
                tag, payload = None, b""
            size = len(payload)
            if tag is not None and size < 0x7C:
                entry = prefix + _VALUE + _SMALL[size + 4] + tag + _SMALL[size + 2] + _ENTRY + _SMALL[size] + payload
            else:
                entry = prefix + _field(_VALUE, _feature(key, value))
        size = len(entry)
        parts += (_ENTRY, _SMALL[size] if size < 0x80 else _varint(size), entry)
    if not parts:
        return b""
    return _field(_ENTRY, b"".join(parts))


def _feature(key: str, value: Any) -> bytes:
    if isinstance(value, float):
        return _field(_FLOAT_LIST, _field(_ENTRY, _floats([value])))
    if isinstance(value, int):
        return _field(_INT64_LIST, _field(_ENTRY, _ints(key, value)))
    if isinstance(value, str):
        return _field(_BYTES_LIST, _field(_ENTRY, value.encode("utf-8")))
    if isinstance(value, bytes):
        return _field(_BYTES_LIST, _field(_ENTRY, value))
    if isinstance(value, Int64List):
        return _field(_INT64_LIST, _field(_ENTRY, b"".join(_ints(key, int(v)) for v in value)) if value else b"")
    if isinstance(value, list):
        try:
            packed = _floats(value)
        except TypeError:
            raise TypeError(f"cannot encode '{key}' = {value!r}: a list must hold numbers") from None
        return _field(_FLOAT_LIST, _field(_ENTRY, packed) if value else b"")
    raise TypeError(f"cannot encode '{key}' = {value!r} of type {type(value).__name__}; "
                    "allowed: float, int, str, bytes, list[float], Int64List")


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag, the payload's length and the payload."""
    return tag + _varint(len(payload)) + payload


def _floats(values: list) -> bytes:
    # float32, rounded (and overflowing to inf) as protobuf's own float fields do.
    packed = array("f", values)
    if _SWAP_FLOATS:
        packed.byteswap()
    return packed.tobytes()


def _ints(key: str, value: int) -> bytes:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"cannot encode '{key}' = {value!r}: an int must fit in int64")
    return _varint(value & 0xFFFFFFFFFFFFFFFF)  # negative ints as 10-byte two's complement


def _key_field(key: str) -> bytes:
    """The map-entry key field of ``key``, cached: a row has the same few keys every time."""
    field = _field(_ENTRY, key.encode("utf-8"))
    if len(_KEY_FIELDS) < 4096:
        _KEY_FIELDS[key] = field
    return field


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [bytes((n,)) for n in range(0x80)]


def tfrecord_frames(records: Iterable[bytes]) -> bytes:
    """The TFRecord file bytes of ``records``, each framed as TFRecord readers expect.

    A frame is the length (uint64, little-endian), its masked CRC-32C, the data and the data's
    masked CRC-32C; the frames of many records are joined so that a (compressed) file takes
    them in one write.

    Args:
        records: the serialized records, in order.

    Returns:
        The concatenated frames.
    """
    import google_crc32c

    crc = google_crc32c.value
    frames = []
    for data in records:
        length = _LENGTH.pack(len(data))
        frames += (length, _CRC.pack(_mask(crc(length))), data, _CRC.pack(_mask(crc(data))))
    return b"".join(frames)


def _mask(crc: int) -> int:
    # TFRecord stores CRCs rotated and offset, as in the LevelDB log format.
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")

"""Which text encodings a CSV source may declare (``data.source.encoding``).

The CSV reader finds records and quoted fields in the raw bytes (line breaks, quotes and the
delimiter are looked for byte by byte, and large files are read in byte ranges in parallel)
and decodes a record only once it has its bytes. That is right for an encoding exactly when
its bytes below 0x80 are ASCII and never part of a multi-byte character: UTF-8, every
single-byte encoding that extends ASCII (latin-1, cp1252, iso-8859-*, koi8-r, mac-roman, ...),
EUC-JP, EUC-KR and GB2312. Shift_JIS, GBK, GB18030, Big5 and cp949 put ASCII bytes inside
characters (the second byte of Shift_JIS ``ソ`` is a backslash, of GBK ``丂`` an ``@``);
UTF-16 and UTF-32 write every ASCII character with zero bytes; ISO-2022-JP, HZ and UTF-7
use ASCII bytes to switch character sets. Those are refused.

The decision is a check of the codec itself (:func:`ascii_compatible`), not a list of names,
so any codec Python knows is judged the same way.
"""

from __future__ import annotations

import codecs
import encodings.aliases
import functools
import re
from typing import Callable

from mtl_tf.errors import did_you_mean

UTF8 = "utf-8"
_UTF8_NAMES = ("utf-8", "utf-8-sig")
_ASCII_PAIRS = b"".join(bytes((a, b)) for a in range(0x80) for b in range(0x80))
# Characters of many scripts: where an encoding has one, its bytes must all be 0x80 or more.
_PROBE = "éü€£§ÆŒšЖΩאعกあア中한"
_ASCII_BYTE = re.compile(rb"([\x00-\x7f])")
_LONGEST = 3  # bytes of the longest byte sequences looked at (Shift_JIS, GBK & co. show at 2)
_ALLOWED = ("utf-8 (the default), a single-byte encoding that extends ASCII (latin-1, cp1252, iso-8859-15, "
            "koi8-r, mac-roman, ...), euc-jp, euc-kr or gb2312")


def source_encoding(value: str) -> str:
    """The codec name ``value`` stands for (``utf-8`` for ``UTF8`` and ``utf-8-sig``, ``iso8859-1`` for
    ``latin1``), if CSV records in it can be read byte by byte.

    Raises:
        ValueError: ``value`` is no codec Python knows, not a text encoding, or one whose
            ASCII bytes may be part of other characters; naming what is allowed.
    """
    try:
        name = codecs.lookup(value).name
    except LookupError:
        raise ValueError(f"unknown encoding {value!r}{did_you_mean(value.lower().replace('-', '_'), _known_names())}; "
                         f"allowed: {_ALLOWED}") from None
    if name in _UTF8_NAMES:
        return UTF8
    if not ascii_compatible(name):
        raise ValueError(f"{_why_not(value, name)}; allowed: {_ALLOWED}")
    return name


def _known_names() -> list[str]:
    names = set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values())
    return sorted(name for name in names if _exists(name))


def _exists(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def _why_not(value: str, name: str) -> str:
    if not _is_text_encoding(name):
        return f"{value!r} is not a text encoding (it is the {name} codec)"
    recode = f"re-encode the files to UTF-8, e.g. iconv -f {name} -t utf-8"
    if name.startswith(("utf-16", "utf-32")):
        return f"{value!r} writes ASCII characters with zero bytes, so lines cannot be found byte by byte: {recode}"
    if not _ascii_is_ascii(name):
        why = "does not read every byte below 0x80 as its ASCII character (some switch character sets)"
    elif _high_sequences(name)[0] or not _probe_encodes_high(name):
        why = "uses bytes below 0x80 inside other characters"
    else:
        why = "decodes bytes of 0x80 or more to a quote or a line break"
    return f"{value!r} {why}, so quotes, delimiters and line breaks cannot be found byte by byte: {recode}"


def _is_text_encoding(name: str) -> bool:
    return getattr(codecs.lookup(name), "_is_text_encoding", True)


@functools.lru_cache(maxsize=None)
def ascii_compatible(name: str) -> bool:
    """Whether bytes below 0x80 always stand for themselves in ``name``, so records can be
    found byte by byte: each ASCII byte, alone or next to any other ASCII byte, decodes to its
    ASCII character; no byte sequence (up to three bytes) decodes with an ASCII byte inside a
    character; no sequence of other bytes decodes to a quote or a line break; and characters
    the encoding has (of a few scripts) encode to bytes of 0x80 or more.
    """
    if not _is_text_encoding(name) or not _ascii_is_ascii(name) or not _probe_encodes_high(name):
        return False
    hides, from_high = _high_sequences(name)
    return not hides and not from_high & {'"', "\n", "\r"}


def ascii_from_other_bytes(name: str) -> frozenset[str]:
    """The ASCII characters some sequence of bytes of 0x80 or more decodes to in ``name``
    (EUC-JP: ``~``, from its JIS X 0212 tilde); a delimiter must not be one of them."""
    return frozenset() if name == UTF8 else _high_sequences(name)[1]


def _ascii_is_ascii(name: str) -> bool:
    try:
        return (all(bytes((a,)).decode(name) == chr(a) for a in range(0x80))
                and _ASCII_PAIRS.decode(name) == _ASCII_PAIRS.decode("ascii"))
    except (UnicodeError, ValueError, LookupError):
        return False


def _probe_encodes_high(name: str) -> bool:
    for char in _PROBE:
        try:
            data = char.encode(name)
        except (UnicodeError, ValueError):
            continue
        if min(data) < 0x80:
            return False
    return True


@functools.lru_cache(maxsize=None)
def _high_sequences(name: str) -> tuple[bool, frozenset[str]]:
    """Over the byte sequences that start with a byte of 0x80 or more, up to ``_LONGEST``
    bytes: whether one decodes with an ASCII byte taken into another character, and the
    ASCII characters that sequences without ASCII bytes decode to."""
    decode = codecs.lookup(name).decode
    incremental = codecs.getincrementaldecoder(name)
    prefixes = [bytes((lead,)) for lead in range(0x80, 0x100) if _state(bytes((lead,)), decode, incremental)]
    from_high: set[str] = set()
    while prefixes:
        pending = []
        for prefix in prefixes:
            for byte in range(0x100):
                data = prefix + bytes((byte,))
                try:
                    text = decode(data)[0]
                except (UnicodeError, ValueError):
                    if len(data) < _LONGEST and _state(data, decode, incremental) == "pending":
                        pending.append(data)
                    continue
                if min(data) >= 0x80:
                    from_high.update(char for char in text if char < "\x80")
                elif _hides_ascii(data, text, decode):
                    return True, frozenset(from_high)
        prefixes = pending
    return False, frozenset(from_high)


def _state(data: bytes, decode: Callable, incremental: Callable) -> str | None:
    """``complete`` (it decodes), ``pending`` (it may start a character) or None (invalid)."""
    try:
        decode(data)
        return "complete"
    except (UnicodeError, ValueError):
        pass
    try:
        return "pending" if incremental().decode(data) == "" else None
    except (UnicodeError, ValueError):
        return None


def _hides_ascii(data: bytes, text: str, decode: Callable) -> bool:
    """Whether ``data`` decodes to something else than its ASCII bytes as themselves between
    the decoded runs of other bytes around them."""
    pieces = [piece for piece in _ASCII_BYTE.split(data) if piece]
    try:
        return text != "".join(decode(piece)[0] for piece in pieces)
    except (UnicodeError, ValueError):
        return True


@functools.lru_cache(maxsize=None)
def single_byte(name: str) -> bool:
    """Whether every character of ``name`` is one byte (no byte starts a longer character)."""
    if name == UTF8:
        return False
    incremental = codecs.getincrementaldecoder(name)
    for byte in range(0x100):
        try:
            if incremental().decode(bytes((byte,))) == "":
                return False
        except (UnicodeError, ValueError):
            continue
    return True


def display_name(name: str) -> str:
    """How messages name an encoding: ``UTF-8``, else its codec name."""
    return "UTF-8" if name == UTF8 else name

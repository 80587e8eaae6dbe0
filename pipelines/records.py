"""Reading CSV records from bytes: quoted line breaks, blank lines, a BOM, bytes the encoding cannot decode.

A record is one line, or several when a quoted field holds line breaks (``"12 Main St\\nApt 3"``),
as Python's csv module and pandas read them. A quote opens a quoted field only at the start
of a field; inside one, ``""`` is a quote; after its closing quote the field runs on to the
next delimiter (so ``5" screen`` is an ordinary field holding a quote). A line ends its
record unless a quoted field is still open at its end.

At the start of a line the reader is in one of two states: at a record start, or inside a
quoted field. That is what lets a large file be read in byte ranges in parallel: a range
reads the records that start in it (finishing its last record past its end if it must) and
skips the tail of a record that began in the range before. Whether a range begins inside a
quoted field depends only on the state at the start of the range before and that range's
bytes, so each range is first scanned under both states (:func:`next_state`, cheap: no
decoding or parsing) and the states are chained from the file's start
(:func:`range_states`), before any record is converted.

The bytes are searched for line breaks, quotes and the delimiter before anything is decoded,
so the file's encoding (``data.source.encoding``, UTF-8 by default) must be one whose bytes
below 0x80 are ASCII and never part of another character (:mod:`mtl_tf.recipe.charsets`
refuses the others when the recipe is read). A record is decoded once its bytes are known; a
UTF-8 byte order mark is dropped only when the encoding is UTF-8.

The records are yielded as:

- ``str``: the record's text (without its final line ending; inner line breaks kept);
- ``None``: a blank line (empty or only whitespace), which is not a row;
- :class:`BadRecord`: a record that cannot be a row (bytes the encoding cannot decode, a quote
  never closed, too long), with its reason kind, the reason and its text (undecodable bytes
  escaped).
"""

from __future__ import annotations

import codecs
import functools
import re
from typing import IO, Iterator, NamedTuple, Sequence, Union

from mtl_tf.recipe.charsets import UTF8, display_name
from mtl_tf.recipe.schema import WHITESPACE_DELIMITER

BOM = codecs.BOM_UTF8
MAX_RECORD_BYTES = 1 << 20
SHOWN_CHARS = 2000
_QUOTE = b'"'
_QUOTE_CODE = ord('"')  # `int in bytes` is a memchr; `bytes in bytes` costs ten times more


class BadRecord(NamedTuple):
    """A record that cannot be a row: its reject kind, the reason and its (escaped) text."""

    kind: str
    reason: str
    text: str


Record = Union[str, None, BadRecord]


class _Crossed:
    """What :meth:`RecordScanner.next_record` returns when a record runs past ``stop``."""


CROSSED = _Crossed()


@functools.lru_cache(maxsize=16)
def record_pattern(delimiter: str, encoding: str = UTF8) -> re.Pattern[bytes]:
    """The regex that fully matches a complete record (a line, or lines joined) of ``delimiter``
    (as ``encoding`` writes it).

    It fails exactly when a quoted field is still open at the end of the text. Its
    quantifiers are possessive, so a failing match costs one pass over the text.
    """
    quoted = rb'"[^"]*+(?:""[^"]*+)*+"'  # unrolled: much faster than an alternation per byte
    if delimiter == WHITESPACE_DELIMITER:
        space = rb"[^\S\n]"
        field = rb'(?:%s\S*+|[^"\s]\S*+)' % quoted
        return re.compile(rb"%s*+(?:%s(?:%s++%s)*+)?%s*+" % (space, field, space, field, space))
    raw = delimiter.encode(encoding)
    if len(raw) == 1:
        plain = b"[^%s\n]" % re.escape(raw)
        field = b'(?:%s%s*+|[^"%s\n]%s*+|)' % (quoted, plain, re.escape(raw), plain)
    else:
        plain = rb"(?:(?!%s)[^\n])" % re.escape(raw)
        field = rb'(?:%s%s*+|(?!")%s*+)' % (quoted, plain, plain)
    return re.compile(rb"%s(?:%s%s)*+" % (field, re.escape(raw), field))


def line_body(raw: bytes) -> bytes:
    """``raw`` without its ``\\n`` or ``\\r\\n`` ending."""
    if raw[-1:] == b"\n":
        return raw[:-2] if raw[-2:-1] == b"\r" else raw[:-1]
    return raw


def _shown(raw: bytes, encoding: str = UTF8) -> str:
    text = raw.decode(encoding, "backslashreplace")
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


class RecordScanner:
    """Reads a binary file handle one record at a time from a line start.

    Args:
        handle: the open file, positioned at ``position``.
        position: the byte offset of the handle (kept up to date as lines are read).
        delimiter: the field delimiter (one character, or :data:`WHITESPACE_DELIMITER`).
        strip_bom: drop a UTF-8 byte order mark from the first line read (when ``encoding``
            is UTF-8; in another encoding those bytes are characters).
        limit: the most bytes a record may have; a longer one is read to its end but
            returned as a ``record_too_long`` :class:`BadRecord`.
        encoding: the file's text encoding (a codec name, as the recipe normalises it).
    """

    def __init__(self, handle: IO[bytes], position: int, delimiter: str, strip_bom: bool = False,
                 limit: int = MAX_RECORD_BYTES, encoding: str = UTF8):
        self.handle, self.position, self.limit, self.encoding = handle, position, limit, encoding
        self.strip_bom = strip_bom and encoding == UTF8
        self.pattern = record_pattern(delimiter, encoding)

    def _closes(self, raw: bytes) -> bool:
        """Whether a line read inside a quoted field closes its record."""
        return _QUOTE_CODE in raw and self.pattern.fullmatch(_QUOTE + line_body(raw)) is not None

    def skip_tail(self, stop: int | None = None) -> bool:
        """Reads past the rest of a record whose quoted field is open at the current line start.

        Returns:
            True once the record has ended (or the file has); False, without reading it,
            when the next line starts at or after ``stop`` with the field still open.
        """
        while stop is None or self.position < stop:
            raw = self.handle.readline()
            if not raw:
                return True
            self.position += len(raw)
            if self._closes(raw):
                return True
        return False

    def next_record(self, stop: int | None = None) -> bytes | BadRecord | _Crossed | None:
        """The next record's bytes (without the final line ending), None at the end of the file.

        A record whose quoted field is open at the end of a line takes the following lines
        too; when one of them would start at or after ``stop``, it returns :data:`CROSSED`
        instead. A quoted field still open at the end of the file, or a record over
        ``limit`` bytes, is a :class:`BadRecord`.
        """
        raw = self.handle.readline()
        if not raw:
            return None
        self.position += len(raw)
        if self.strip_bom:
            self.strip_bom = False
            raw = raw.removeprefix(BOM)
        body = line_body(raw)
        if _QUOTE_CODE not in body or self.pattern.fullmatch(body) is not None:
            return body
        return self.rest_of_record(raw, stop)

    def rest_of_record(self, raw: bytes, stop: int | None = None) -> bytes | BadRecord | _Crossed:
        """The record whose first line, ``raw`` (already read), leaves a quoted field open:
        the following lines up to the one that closes it (see :meth:`next_record`)."""
        parts, size, lines = [raw], len(raw), 1
        while True:
            if stop is not None and self.position >= stop:
                return CROSSED
            more = self.handle.readline()
            if not more:
                return BadRecord("unclosed_quote", f"a quoted field is not closed by the end of the file ({lines} "
                                 "lines read for this record; an unmatched '\"'?)",
                                 _shown(b"".join(parts), self.encoding))
            self.position += len(more)
            size, lines = size + len(more), lines + 1
            if size <= self.limit:
                parts.append(more)
            if self._closes(more):
                break
        if size > self.limit:
            return BadRecord("record_too_long", f"a quoted field runs over {lines} lines ({size} bytes; a record may "
                             f"have at most {self.limit}): an unmatched '\"'?", _shown(b"".join(parts), self.encoding))
        return line_body(b"".join(parts))


def decode_record(body: bytes, encoding: str = UTF8) -> Record:
    """A record's text; None for a blank line; an ``encoding`` :class:`BadRecord` when
    ``encoding`` cannot decode it (naming the byte and the encoding)."""
    if not body or body.isspace():
        return None
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as err:
        return BadRecord("encoding", undecodable(body, err, encoding, "of the record"),
                         body.decode(encoding, "backslashreplace"))


def undecodable(raw: bytes, err: UnicodeDecodeError, encoding: str, where: str) -> str:
    """Why ``raw`` cannot be decoded: the byte, where it is, and what to do about it."""
    found = f"not {display_name(encoding)}: byte 0x{raw[err.start]:02x} at byte {err.start + 1} {where}"
    if encoding == UTF8:
        return (f"{found} (data.source.encoding is utf-8, the default; set it to the file's encoding, e.g. cp1252, "
                "or re-encode the file, e.g. iconv -f latin1 -t utf-8)")
    return f"{found} (data.source.encoding: {encoding})"


def _scanner_at(handle: IO[bytes], start: int, delimiter: str, skip_header: bool,
                limit: int = MAX_RECORD_BYTES, encoding: str = UTF8) -> RecordScanner:
    """A scanner at the first line start at or after ``start`` (after the header at 0)."""
    if start == 0:
        scanner = RecordScanner(handle, 0, delimiter, strip_bom=True, limit=limit, encoding=encoding)
        if skip_header:
            scanner.next_record()
        return scanner
    # From one byte before the range: a line that starts exactly at ``start`` follows a
    # newline there, which this readline consumes.
    handle.seek(start - 1)
    return RecordScanner(handle, start - 1 + len(handle.readline()), delimiter, limit=limit, encoding=encoding)


def read_records(handle: IO[bytes], start: int, end: int | None, delimiter: str, in_quotes: bool = False,
                 skip_header: bool = False, limit: int = MAX_RECORD_BYTES, encoding: str = UTF8) -> Iterator[Record]:
    """The records that start in ``[start, end)`` of a file (``end`` None: to its end).

    Args:
        handle: the file, opened in binary mode (seekable unless ``start`` is 0).
        start: the range's first byte; at 0 a BOM is dropped and ``skip_header`` applies.
        end: the byte after the range; the last record is finished past it.
        delimiter: the field delimiter.
        in_quotes: the range's first line start lies inside a quoted field (of a record
            that the range before reads); its tail is skipped.
        skip_header: the file's first record is the header, not data.
        limit: the most bytes a record may have.
        encoding: the file's text encoding; a record it cannot decode is an ``encoding``
            :class:`BadRecord`.

    Yields:
        ``str`` records, None for blank lines, :class:`BadRecord` for unusable records.
    """
    scanner = _scanner_at(handle, start, delimiter, skip_header, limit, encoding)
    if in_quotes and (end is None or scanner.position < end):
        scanner.skip_tail()
    if scanner.strip_bom and (end is None or scanner.position < end):
        body = scanner.next_record()
        if body is None:
            return
        yield body if isinstance(body, BadRecord) else decode_record(body, encoding)
    # The loop of RecordScanner.next_record, inlined: it runs once per line of every file.
    readline, pattern, position, quote = handle.readline, scanner.pattern, scanner.position, _QUOTE_CODE
    while end is None or position < end:
        raw = readline()
        if not raw:
            return
        size = len(raw)
        position += size
        if raw[-1] == 10:  # b"\n"
            body = raw[:-2] if size > 1 and raw[-2] == 13 else raw[:-1]
        else:
            body = raw
        if quote in body and pattern.fullmatch(body) is None:
            scanner.position = position
            record = scanner.rest_of_record(raw)
            position = scanner.position
            yield record if isinstance(record, BadRecord) else decode_record(record, encoding)
        elif not body or body.isspace():
            yield None
        else:
            try:
                yield body.decode(encoding)
            except UnicodeDecodeError:
                yield decode_record(body, encoding)


def next_state(handle: IO[bytes], start: int, end: int, delimiter: str, in_quotes: bool,
               skip_header: bool = False, encoding: str = UTF8) -> bool:
    """Whether the first line start after the range ``[start, end)`` lies inside a quoted field,
    given whether the range's own first line start does (``in_quotes``).

    It follows :func:`read_records` over the range without decoding anything, and stops at
    the first line that starts past the range.
    """
    scanner = _scanner_at(handle, start, delimiter, skip_header, encoding=encoding)
    if scanner.position >= end:
        return in_quotes  # no line starts in the range: the state passes through
    if in_quotes and not scanner.skip_tail(stop=end):
        return True
    while scanner.position < end:
        body = scanner.next_record(stop=end)
        if body is None:
            return False
        if body is CROSSED:
            return True
    return False


def range_states(transfers: Sequence[tuple[int, tuple[bool, bool | None] | None]]) -> list[tuple[int, bool]]:
    """Chains the ranges of one file: ``(start, in_quotes)`` of each, from the file's start.

    Args:
        transfers: ``(start, (state after the range if it begins at a record start, state
            after it if it begins inside a quoted field))`` per range, in any order; None
            (or a None entry) where the state after the range is never needed.
    """
    states, state = [], False
    for start, transfer in sorted(transfers, key=lambda item: item[0]):
        states.append((start, state))
        if transfer is not None:
            state = bool(transfer[int(state)])
    return states


def first_record(handle: IO[bytes], delimiter: str, encoding: str = UTF8) -> bytes:
    """The first record of a file (without its line ending, nor a BOM in UTF-8); b"" for an empty file."""
    body = RecordScanner(handle, 0, delimiter, strip_bom=True, encoding=encoding).next_record()
    if isinstance(body, BadRecord):
        raise ValueError(f"the first record cannot be read: {body.reason}")
    return body or b""

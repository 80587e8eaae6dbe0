"""The on-disk cache of a streamed split: its rows parsed once, in chunks, as tf.data snapshots.

A split too large for memory is read from its gzip TFRecords at every pass, and parsing
``tf.Example`` protos costs most of that read. The cache parses the split once, in the order
the shards are read unshuffled, and stores chunks of ``chunk_rows`` parsed rows with
``tf.data.Dataset.save`` (one snapshot shard per chunk, uncompressed), so a pass reads tensors
back with no parsing; the reader shuffles the chunk order and the rows within windows of
chunks (:mod:`mtl_tf.data.reader`).

Layout: ``<cache_dir>/<split>-<data key>-<spec key>/`` holding the snapshot and
``manifest.json``. The data key hashes the split's shard names, sizes and modification times
and its row count in dataset.json; the spec key hashes the parsing spec (keys, dtypes,
shapes, defaults), the chunk size, the cache format and the TensorFlow version. A changed
shard or spec is a new key, so a stale cache is never read; caches of the split under another
data key are removed once the new one is complete (their data is gone).

Safety: a cache is written in a temporary folder beside its final one and renamed into place
once complete, with ``manifest.json`` (every file's size and CRC-32) written last; opening a
cache checks the manifest and every file (a missing, truncated or altered one) and rebuilds it
otherwise. Disk use: about the split's parsed size (uncompressed tensors; encoded images stay
encoded), typically 2-4 times its gzip shards.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
import zlib
from pathlib import Path
from typing import Any, Callable

import tensorflow as tf

CACHE_FOLDER = "cache"
MANIFEST = "manifest.json"
FORMAT = 1
_CRC_BLOCK = 1 << 22
log = logging.getLogger(__name__)


def default_cache_dir(root: str | None) -> str | None:
    """``<dataset folder>/cache``, or None when the dataset is not on a local file system."""
    return None if not root or "://" in root else str(Path(root) / CACHE_FOLDER)


def data_key(files: list[str], rows: int) -> str:
    """Hash of the shards (name, size, modification time) and the row count dataset.json gives."""
    parts = [f"rows={rows}"]
    for path in files:
        stat = os.stat(path)
        parts.append(f"{os.path.basename(path)}:{stat.st_size}:{stat.st_mtime_ns}")
    return _digest(parts)


def spec_key(example_spec: dict[str, Any], chunk_rows: int) -> str:
    """Hash of the parsing spec (every key's dtype, shape, default), chunk size and format."""
    parts = [f"format={FORMAT}", f"tf={tf.__version__}", f"chunk_rows={chunk_rows}"]
    parts.extend(f"{key}:{example_spec[key]!r}" for key in sorted(example_spec))
    return _digest(parts)


def cached_chunks(cache_dir: str, split: str, files: list[str], rows: int,
                  example_spec: dict[str, Any], chunk_rows: int,
                  chunks: Callable[[], tf.data.Dataset]) -> tuple[str, int]:
    """The folder of a split's valid cache, built first when missing, stale or damaged.

    Args:
        cache_dir: where caches live (created when missing).
        split: the split name (part of the folder name).
        files: the split's shards (their names, sizes and times key the cache).
        rows: the split's row count in dataset.json; a build that reads another count fails.
        example_spec: the parsing spec (keys the cache).
        chunk_rows: rows per stored chunk.
        chunks: builds the dataset of parsed chunks to store (read only when building).

    Returns:
        ``(folder, chunk count)``.
    """
    data, parsing = data_key(files, rows), spec_key(example_spec, chunk_rows)
    folder = Path(cache_dir) / f"{split}-{data}-{parsing}"
    manifest = read_manifest(folder)
    if manifest is None:
        manifest = _build(folder, chunks, rows, f"{data}-{parsing}")
        _remove_stale(Path(cache_dir), split, data)
    return str(folder), int(manifest["chunks"])


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The cache's manifest when the cache is complete and intact, else None (and a note why)."""
    path = folder / MANIFEST
    if not folder.is_dir():
        return None
    try:
        manifest = json.loads(path.read_text())
        listed = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("cache %s has no readable manifest (%s): rebuilding it", folder, err)
        return None
    for name, (size, crc) in listed.items():
        file = folder / name
        if not file.is_file() or file.stat().st_size != size or _crc(file) != crc:
            log.warning("cache %s: %s is missing, truncated or altered: rebuilding the cache", folder, name)
            return None
    return manifest


def _build(folder: Path, chunks: Callable[[], tf.data.Dataset], rows: int, key: str) -> dict[str, Any]:
    """Writes the cache in a temporary folder, then renames it into place (a concurrent
    writer's complete cache is kept if it got there first)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder.parent / f".tmp-{folder.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        counted, count = _save(chunks(), temporary)
        if counted != rows:
            raise ValueError(f"the shards hold {counted} rows but dataset.json says {rows}; "
                             "was a shard added, removed or rewritten without dataset.json?")
        manifest = {"key": key, "rows": counted, "chunks": count,
                    "files": {name: [(temporary / name).stat().st_size, _crc(temporary / name)]
                              for name in _files(temporary)}}
        (temporary / MANIFEST).write_text(json.dumps(manifest, indent=1))
        if folder.exists():
            shutil.rmtree(folder)  # damaged: read_manifest refused it
        try:
            os.rename(temporary, folder)
        except OSError:
            existing = read_manifest(folder)
            if existing is None:
                raise
            return existing
        return manifest
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _save(chunks: tf.data.Dataset, folder: Path) -> tuple[int, int]:
    """Saves ``chunks`` (one snapshot shard per chunk, in order); returns the rows and chunks
    read back."""
    chunks.enumerate().save(str(folder), shard_func=lambda index, chunk: index)
    sizes = tf.data.Dataset.load(str(folder)).map(lambda index, chunk: tf.shape(tf.nest.flatten(chunk)[0])[0])
    counts = [int(size) for size in sizes]
    return sum(counts), len(counts)


def _files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def _remove_stale(cache_dir: Path, split: str, data: str) -> None:
    """Removes the split's caches of other shard contents (the data they hold changed)."""
    for entry in cache_dir.glob(f"{split}-*-*"):
        name, entry_data, _ = entry.name.rsplit("-", 2)
        if entry.is_dir() and name == split and entry_data != data:
            shutil.rmtree(entry, ignore_errors=True)


def _crc(path: Path) -> int:
    crc = 0
    with open(path, "rb") as handle:
        while block := handle.read(_CRC_BLOCK):
            crc = zlib.crc32(block, crc)
    return crc


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

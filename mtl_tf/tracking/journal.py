"""A run's local tracking journal: everything a run logs, written to disk before MLflow sees it.

A tracked run with a journal folder (``mtl run`` gives it ``<run_dir>/tracking``) keeps one
folder per MLflow run::

    <run_dir>/tracking/latest            the id of the newest run
    <run_dir>/tracking/<run_id>/run.json  tracking URI, experiment, run id, whether it ended
    <run_dir>/tracking/<run_id>/journal.jsonl  one entry per call, numbered ("seq"): params,
                                          metrics (with their timestamps), tags, artifact
                                          paths, the model registration, the run's end
    <run_dir>/tracking/<run_id>/sent.jsonl     the numbers of the entries MLflow has received

An entry is appended (and flushed to disk) first, then sent; ``sent.jsonl`` records it once
MLflow has answered. Sending again what was sent but not yet recorded is harmless: MLflow
keeps a metric once per (key, timestamp, step, value), a param of the same value and a tag or
artifact logged again are the same, and a registration first looks for the version it made.
So a journal can be sent any number of times (``mtl tracking sync``), and nothing is lost or
logged twice. One process sends a journal at a time (a lock file beside it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

JOURNAL_FILE = "journal.jsonl"
SENT_FILE = "sent.jsonl"
RUN_FILE = "run.json"
LATEST_FILE = "latest"
LOCK_FILE = ".lock"


class Journal:
    """The journal of one MLflow run (see the module docstring).

    Args:
        folder: ``<journal root>/<run_id>``.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._next = None

    # --- creating and finding -----------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike, run_id: str, info: Mapping[str, Any]) -> "Journal":
        """A new journal for ``run_id`` under ``root``; ``root/latest`` names it."""
        journal = cls(Path(root) / run_id)
        journal.folder.mkdir(parents=True, exist_ok=True)
        journal.write_info({**info, "run_id": run_id, "ended": None})
        _write_atomically(Path(root) / LATEST_FILE, run_id)
        return journal

    @classmethod
    def latest(cls, root: str | os.PathLike) -> "Journal | None":
        """The journal ``root/latest`` names, or None."""
        path = Path(root) / LATEST_FILE
        if not path.is_file():
            return None
        journal = cls(Path(root) / path.read_text().strip())
        return journal if (journal.folder / RUN_FILE).is_file() else None

    @classmethod
    def all_under(cls, root: str | os.PathLike) -> list["Journal"]:
        """Every journal under ``root`` (a journal folder itself, a journal root, or a run
        folder holding ``tracking/``), oldest first."""
        root = Path(root)
        if (root / RUN_FILE).is_file():
            return [cls(root)]
        if (root / "tracking").is_dir() and not (root / LATEST_FILE).is_file():
            root = root / "tracking"
        folders = [p for p in root.iterdir() if (p / RUN_FILE).is_file()] if root.is_dir() else []
        return [cls(p) for p in sorted(folders, key=lambda p: (p / RUN_FILE).stat().st_mtime)]

    # --- reading ------------------------------------------------------------------------
    @property
    def info(self) -> dict[str, Any]:
        return json.loads((self.folder / RUN_FILE).read_text())

    def write_info(self, info: Mapping[str, Any]) -> None:
        _write_atomically(self.folder / RUN_FILE, json.dumps(dict(info), indent=1, sort_keys=True))

    @property
    def run_id(self) -> str:
        return self.info["run_id"]

    def entries(self) -> list[dict[str, Any]]:
        """Every entry, in order (a line cut short by a crash is left out)."""
        return list(_read_lines(self.folder / JOURNAL_FILE))

    def sent(self) -> set[int]:
        """The numbers of the entries MLflow has received."""
        return {int(line["seq"]) for line in _read_lines(self.folder / SENT_FILE)}

    def pending(self) -> list[dict[str, Any]]:
        """The entries not yet received, in order."""
        sent = self.sent()
        return [entry for entry in self.entries() if entry["seq"] not in sent]

    def results(self) -> dict[int, Any]:
        """seq -> what sending an entry returned, for entries that return something (a registration)."""
        return {int(line["seq"]): line["result"] for line in _read_lines(self.folder / SENT_FILE) if "result" in line}

    # --- writing ------------------------------------------------------------------------
    def append(self, op: str, **fields: Any) -> dict[str, Any]:
        """Writes one entry (numbered after the last) and returns it."""
        if self._next is None:
            entries = self.entries()
            self._next = (entries[-1]["seq"] + 1) if entries else 1
        entry = {"seq": self._next, "op": op, **fields}
        _append_line(self.folder / JOURNAL_FILE, entry)
        self._next += 1
        return entry

    def mark_sent(self, seq: int, result: Any = None, note: str | None = None) -> None:
        line: dict[str, Any] = {"seq": seq}
        if result is not None:
            line["result"] = result
        if note:
            line["note"] = note
        _append_line(self.folder / SENT_FILE, line)

    @contextlib.contextmanager
    def sending(self) -> Iterator[None]:
        """Holds the journal's lock while its entries are sent (one sender at a time)."""
        with open(self.folder / LOCK_FILE, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _read_lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a process killed while writing it


def _append_line(path: Path, record: Mapping[str, Any]) -> None:
    with open(path, "a+b") as handle:
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":  # a line a killed process left half written
                handle.write(b"\n")
    with open(path, "a") as handle:
        handle.write(json.dumps(record, sort_keys=True, allow_nan=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(text)
    os.replace(scratch, path)

"""A quiet TensorFlow start-up for the ``mtl`` command.

Importing TensorFlow prints lines that are not the user's concern: the oneDNN notice, the
CPU-instructions notice (``cpu_feature_guard``), "Could not find cuda drivers"
(``cudart_stub``), twice, and on a machine without a GPU
``E0000 ... failed call to cuInit: INTERNAL: CUDA error``, which reads as a failure. They are
written before TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL``, so the variable alone does not hide
them. :func:`quiet_tensorflow` (called by the ``mtl`` entry point before anything imports
TensorFlow) therefore

- sets ``TF_CPP_MIN_LOG_LEVEL=2`` (errors only, from TensorFlow's C++ side);
- holds back the process's stderr while TensorFlow is imported and lists its devices (when
  CUDA is initialised), then writes back every line except informational and warning log
  lines and, where no NVIDIA GPU is present, the cuInit error. Errors stay visible, and so
  does anything that is not a TensorFlow log line (a Python traceback, a warning).

A user who sets ``TF_CPP_MIN_LOG_LEVEL`` gets TensorFlow's own output at that level, unfiltered.
``TF_ENABLE_ONEDNN_OPTS`` is left alone: only its notice is held back.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import sys
import tempfile
from typing import Iterable, Iterator, MutableMapping

LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = "2"

# absl / TensorFlow C++ log lines: severity, date, time, thread, file:line] message.
_LOG_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]]+\] ")
_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# The second line of cpu_feature_guard's notice, which carries no log prefix.
_CONTINUATIONS = ("To enable the following instructions:",)
_NO_GPU_ERRORS = ("failed call to cuInit",)


def quiet_tensorflow(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Quiets TensorFlow's start-up for this process, unless the user set TF_CPP_MIN_LOG_LEVEL.

    Call it before TensorFlow is imported (it does nothing to an imported TensorFlow but set
    the variable). Returns whether the start-up is quieted.
    """
    if LEVEL_VARIABLE in environ:
        return False
    environ[LEVEL_VARIABLE] = QUIET_LEVEL
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())
    return True


def start_up_noise_filtered(lines: Iterable[str], gpu_present: bool) -> list[str]:
    """The lines of TensorFlow's start-up output worth showing (see the module docstring)."""
    kept, dropping = [], False
    for line in lines:
        match = _LOG_LINE.match(line)
        if match:
            severity = match.group(1)
            dropping = severity in "IW" or (not gpu_present and any(e in line for e in _NO_GPU_ERRORS))
        elif line == _PREAMBLE:
            dropping = True
        elif not (dropping and line.startswith(_CONTINUATIONS)):
            dropping = False
        if not dropping:
            kept.append(line)
    return kept


def gpu_present(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Whether an NVIDIA GPU is there for this process (a driver, and not hidden by CUDA_VISIBLE_DEVICES)."""
    if environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return os.path.exists("/proc/driver/nvidia/version") or bool(glob.glob("/dev/nvidia[0-9]*"))


class _QuietImport:
    """Finds ``tensorflow`` once, so that its first import runs with stderr filtered."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader:
    """Runs the real loader, then lists the devices (which initialises CUDA), stderr filtered."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with _filtered_stderr():
            self._loader.exec_module(module)
            module.config.list_physical_devices("GPU")

    def __getattr__(self, name):
        return getattr(self._loader, name)


@contextlib.contextmanager
def _filtered_stderr() -> Iterator[None]:
    """Collects what is written to file descriptor 2, then writes back the lines worth showing."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", errors="replace").splitlines()
            kept = start_up_noise_filtered(lines, gpu_present())
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()

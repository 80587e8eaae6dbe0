"""What the Trainer prints while it trains.

On a terminal: an ``Epoch e/E`` header, a Keras progress bar that redraws in place, and a
summary line per epoch. Anywhere else (a file, a pipe, ``tee``, CI logs) only the summary
line, one per epoch: a progress bar there is thousands of partial lines with carriage
returns and colour codes, since Keras's ``Progbar`` redraws whenever it runs on a POSIX system.
"""

from __future__ import annotations

import sys
from typing import Callable, Mapping

import keras

from mtl_tf.training.task_metrics import epoch_summary


class Progress:
    """Epoch headers, progress bars and summary lines of one training run.

    Args:
        epochs: the run's last epoch (shown as ``e/E``).
        verbose: 0 prints nothing; 1 prints a summary line per epoch, with a progress bar
            when the output is a terminal.
        chief: whether this worker prints (only the chief of a cluster does).

    Lines go to ``sys.stdout`` as it is when they are printed (where Keras's bar writes too).
    """

    def __init__(self, epochs: int, verbose: int = 1, chief: bool = True):
        self.epochs = int(epochs)
        self.enabled = bool(verbose) and chief
        self._bar: keras.utils.Progbar | None = None

    @property
    def interactive(self) -> bool:
        """Whether stdout is a terminal, where a progress bar can redraw in place."""
        isatty = getattr(sys.stdout, "isatty", None)
        return bool(isatty and isatty())

    def start_epoch(self, epoch: int, steps: int | None) -> None:
        """Begins an epoch of ``steps`` steps (None: unknown); shows its bar on a terminal."""
        self._bar = None
        if self.enabled and self.interactive:
            self._print(f"Epoch {epoch}/{self.epochs}")
            self._bar = keras.utils.Progbar(steps, stateful_metrics=["loss"])

    @property
    def bar_shown(self) -> bool:
        """Whether the epoch under way shows a progress bar."""
        return self._bar is not None

    def update(self, done: int, loss: Callable[[], float], finalize: bool = False) -> None:
        """Moves the bar to ``done`` steps; ``loss`` is read only when a bar is shown."""
        if self._bar is not None:
            self._bar.update(done, [("loss", float(loss()))], finalize=finalize)

    def end_epoch(self, logs: Mapping[str, float], undefined: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """Prints the epoch's summary line (undefined metrics named so, see :func:`summary_line`)."""
        self._bar = None
        if self.enabled:
            self._print(summary_line(logs, self.epochs, undefined))

    def resumed(self, path: str, done: int, steps: int = 0) -> None:
        """Says where a resumed run starts: after epoch ``done`` (and ``steps`` steps of the next)."""
        if self.enabled:
            within = f" and {steps} steps of epoch {done + 1}" if steps else ""
            self._print(f"Resuming from {path} after epoch {done}{within}")

    def _print(self, line: str) -> None:
        print(line, file=sys.stdout, flush=True)


def summary_line(logs: Mapping[str, float], epochs: int | None = None,
                 undefined: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """``epoch 2/5: loss=... val_loss=... <task>/val_<metric>=... (1.2s, 310.5 steps/s)``."""
    return epoch_summary(logs, undefined, epochs=epochs)

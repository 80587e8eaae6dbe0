"""What training prints: one plain line per epoch when stdout is not a terminal, a progress
bar only on a terminal."""

import re
import sys

from mtl_tf.training import Trainer
from training_toy import build_model, make_tasks, toy_dataset


def _fit(epochs=3):
    tasks = make_tasks()
    trainer = Trainer(lambda: build_model(tasks), tasks, "adam", epochs=epochs, verbose=1)
    # 10 steps per epoch, so a bar would redraw several times an epoch.
    trainer.fit(toy_dataset(320), toy_dataset(64, seed=1))


def test_output_to_a_file_is_one_plain_line_per_epoch(capsys):
    _fit()
    out = capsys.readouterr().out
    assert "\x1b[" not in out and "\r" not in out
    lines = out.splitlines()
    assert len(lines) == 3, out
    for epoch, line in enumerate(lines, 1):
        assert re.fullmatch(rf"epoch {epoch}/3: loss=\S+ val_loss=\S+ .*a/val_auc=\S+ .*"
                            r"\(\d+\.\d+s, \d+\.\d+ steps/s\)", line), line


def test_a_terminal_gets_a_progress_bar_per_epoch(capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    _fit(epochs=2)
    out = capsys.readouterr().out
    assert out.count("Epoch 1/2") == 1 and out.count("Epoch 2/2") == 1
    assert "10/10" in out and "\r" in out
    assert len([line for line in out.splitlines() if line.startswith("epoch ")]) == 2

"""Reading the batches inside the compiled function (data of known length): it stops exactly
at the end of the data, and gives the weights, logs and metrics of the Python-read path
(data of unknown length), with one or several steps per call."""

import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.training import Trainer, TrainingDiverged
from training_toy import as_dataset, build_model, make_tasks, toy_arrays, toy_dataset, weights_of


def make_trainer(**kwargs):
    tasks = make_tasks()
    kwargs.setdefault("verbose", 0)
    return Trainer(lambda: build_model(tasks), tasks, {"name": "adam", "learning_rate": 0.05}, **kwargs)


def unknown_length(ds):
    """The same batches, but the dataset can no longer tell how many (so they are read in Python)."""
    unknown = ds.filter(lambda *batch: True)
    assert int(unknown.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    return unknown


def train_logs(history):
    return [{k: v for k, v in logs.items() if k not in ("epoch_time_s", "steps_per_s")} for logs in history.epochs]


def assert_same_run(got, want):
    (got_trainer, got_history), (want_trainer, want_history) = got, want
    for a, b in zip(weights_of(got_trainer.model), weights_of(want_trainer.model)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(train_logs(got_history), train_logs(want_history)):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key


def fit(train, val=None, **kwargs):
    trainer = make_trainer(**kwargs)
    return trainer, trainer.fit(train, val)


def test_known_length_stops_at_the_last_batch_and_equals_the_python_read_path():
    # 200 rows in batches of 32: six full batches and a last one of 8 rows.
    train, val = toy_dataset(200), toy_dataset(72, seed=1)
    assert int(train.cardinality()) == 7
    fast = fit(train, val, epochs=2, steps_per_execution=3, train_metrics=True)
    slow = fit(unknown_length(train), unknown_length(val), epochs=2, train_metrics=True)
    assert [logs["steps"] for logs in fast[1].epochs] == [7, 7]
    assert int(fast[0].optimizer.iterations.numpy()) == 14
    assert np.isfinite(fast[1].epochs[-1]["a/auc"])  # training metrics were computed
    assert_same_run(fast, slow)
    results, expected = fast[0].evaluate(val), slow[0].evaluate(unknown_length(val))
    for task in ("a", "b"):
        assert results[task] == pytest.approx(expected[task], rel=1e-5)
    assert results["a"]["auc"] == pytest.approx(fast[1].epochs[-1]["a/val_auc"], abs=1e-6)


def test_several_steps_per_call_give_the_weights_of_one_step_per_call():
    train, val = toy_dataset(288), toy_dataset(96, seed=1)  # 9 and 3 batches
    one = fit(train, val, epochs=2, steps_per_execution=1)
    for steps in (4, 9):
        assert_same_run(fit(train, val, epochs=2, steps_per_execution=steps), one)


def counting_calls(trainer):
    """The step counts of each call of ``trainer``'s compiled training loop, recorded as it runs."""
    calls, loop = [], trainer._train_loop

    def counted(iterator, count):
        calls.append(count)
        loop(iterator, count)

    trainer._train_loop = counted
    return calls


def test_auto_without_a_progress_bar_runs_an_epoch_per_call_with_the_weights_of_one_step_per_call():
    train, val = toy_dataset(288), toy_dataset(96, seed=1)  # 9 and 3 batches
    trainer = make_trainer(epochs=2)  # steps_per_execution="auto", verbose=0: no bar
    calls = counting_calls(trainer)
    history = trainer.fit(train, val)
    assert calls == [9, 9]
    assert_same_run((trainer, history), fit(train, val, epochs=2, steps_per_execution=1))


def test_auto_with_a_progress_bar_keeps_the_bar_interval(monkeypatch, capsys):
    from mtl_tf.training.progress import Progress

    monkeypatch.setattr(Progress, "interactive", property(lambda self: True))
    trainer = make_trainer(epochs=1, verbose=1)
    calls = counting_calls(trainer)
    trainer.fit(toy_dataset(288))
    assert calls == [1] * 9  # 1/50 of 9 steps: the bar moves after every step
    assert "9/9" in capsys.readouterr().out


def test_steps_per_epoch_reads_on_across_epochs_like_the_python_read_path():
    # 4 batches, 3 steps per epoch, 2 steps per call: the second epoch's data ends after one
    # step, so its first call must stop there and the next one start on fresh data.
    train = toy_dataset(128)
    slow = fit(unknown_length(train), epochs=3, steps_per_epoch=3)
    assert [logs["steps"] for logs in slow[1].epochs] == [3, 3, 3]
    assert_same_run(fit(train, epochs=3, steps_per_epoch=3, steps_per_execution=2), slow)
    assert_same_run(fit(train.repeat(), epochs=3, steps_per_epoch=3, steps_per_execution=2), slow)


def test_steps_per_epoch_equal_to_the_data_length_starts_the_next_epoch_on_fresh_data():
    train = toy_dataset(96)  # 3 batches, so every epoch ends exactly at the end of the data
    slow = fit(unknown_length(train), epochs=2, steps_per_epoch=3)
    assert [logs["steps"] for logs in slow[1].epochs] == [3, 3]
    assert_same_run(fit(train, epochs=2, steps_per_epoch=3, steps_per_execution=3), slow)
    assert_same_run(fit(train, epochs=2), slow)


def test_divergence_inside_a_multi_step_call_names_the_step():
    features, labels = toy_arrays(256, missing=0.0)
    labels["b"][5 * 32 + 3] = np.inf  # in the sixth batch, in the second call of four steps
    with pytest.raises(TrainingDiverged) as caught:
        make_trainer(epochs=2, steps_per_execution=4).fit(as_dataset(features, labels))
    assert caught.value.tasks == ["b"] and caught.value.epoch == 1 and caught.value.step == 6


def test_a_dataset_that_repeats_forever_needs_steps_per_epoch():
    with pytest.raises(ValueError, match="repeats forever.*set steps_per_epoch"):
        make_trainer().fit(toy_dataset(64).repeat())


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "fast"])
def test_steps_per_execution_must_be_a_positive_integer_or_auto(value):
    with pytest.raises(ValueError, match=f"steps_per_execution must be an integer >= 1 or 'auto'; received {value!r}"):
        make_trainer(steps_per_execution=value)


def test_cagrad_coefficients_compiled_with_xla_give_the_weights_of_the_plain_graph():
    from mtl_tf.training.aggregators import AGGREGATORS

    runs = []
    for compiled in (True, False):
        aggregator = AGGREGATORS.get("cagrad")
        assert aggregator.compile_coefficients  # CAGrad's default: its solver's loop is compiled
        aggregator.compile_coefficients = compiled
        # Three epochs: the solvers that warm-start from the previous step's solution carry state.
        runs.append(fit(toy_dataset(96), epochs=3, gradient=aggregator))
    assert_same_run(*runs)

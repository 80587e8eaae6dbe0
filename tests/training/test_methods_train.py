"""Every weighting, gradient aggregator and task sampler trains a toy model for 2 and 5 tasks
without NaN, and lowers the training loss."""

import numpy as np
import pytest

from mtl_tf.training import Trainer
from training_toy import build_model, make_many_tasks, many_task_dataset

METHODS = [
    {"gradient": "pcgrad"}, {"gradient": {"name": "pcgrad", "rep_grad": True}}, {"gradient": "gradvac"},
    {"gradient": "cagrad"}, {"gradient": "mgda"}, {"gradient": {"name": "mgda", "rep_grad": True}},
    {"gradient": "imtl_g"}, {"gradient": "nash_mtl"}, {"gradient": "aligned_mtl"},
    {"gradient": {"name": "aligned_mtl", "rep_grad": True}}, {"gradient": "upgrad"},
    {"weighting": "uncertainty"}, {"weighting": "dwa"}, {"weighting": "rlw"}, {"weighting": "gradnorm"},
    {"weighting": {"name": "gradnorm", "rep_grad": True}}, {"weighting": "famo"},
    {"weighting": "famo", "gradient": "mgda"},
    {"sampling": "round_robin"}, {"sampling": {"name": "proportional", "alpha": 0.5}}, {"sampling": "annealed"},
]


def _label(method):
    return "+".join(f"{v if isinstance(v, str) else v['name'] + ('_rep' if v.get('rep_grad') else '')}"
                    for v in method.values())


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS, ids=_label)
def test_method_trains_a_toy_for_two_and_five_tasks(method):
    for num_tasks in (2, 5):
        tasks = make_many_tasks(num_tasks)
        sizes = {t.name: 100 * (i + 1) for i, t in enumerate(tasks)}
        trainer = Trainer(lambda: build_model(tasks), tasks, {"name": "adam", "learning_rate": 0.05},
                          epochs=3, verbose=0, task_sizes=sizes, **method)
        history = trainer.fit(many_task_dataset(num_tasks))
        assert all(np.all(np.isfinite(w)) for w in trainer.model.get_weights())
        losses = [sum(logs[f"t{i}/loss"] for i in range(num_tasks)) for logs in history.epochs]
        assert np.isfinite(losses).all() and losses[-1] < losses[0], (num_tasks, losses)

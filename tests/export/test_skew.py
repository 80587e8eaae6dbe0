import numpy as np
import pytest

from mtl_tf.data.spec import LabelStats, RegressionStats, TaskSpec
from mtl_tf.export import SkewError, check_skew, export_model
from mtl_tf.tasks import RegressionTask
from tests.export.tiny import complete_examples, example, make_model, make_spec, make_tasks


@pytest.fixture
def exported(tmp_path):
    tasks = make_tasks()
    model = make_model(tasks)
    result = export_model(model, make_spec(), tasks, tmp_path / "export")
    return model, result.saved_model_dir


def test_faithful_export_passes(exported):
    model, saved_model_dir = exported
    examples = complete_examples() + [example(), example(channel="web")]
    report = check_skew(model, saved_model_dir, examples, make_spec(), tolerance=1e-5)
    assert report.ok
    assert report.num_examples == 8
    assert set(report.max_abs_difference) == {"fraud", "takeover", "segment"}
    assert max(report.max_abs_difference.values()) <= 1e-5


def test_changed_tower_weight_is_caught_and_named(exported):
    model, saved_model_dir = exported
    tower = model.get_layer("takeover_tower")
    kernel, bias = tower.get_weights()
    tower.set_weights([kernel + 0.5, bias])
    with pytest.raises(SkewError, match=r"takeover: max \|serving_default - model\| = [0-9.]+") as error:
        check_skew(model, saved_model_dir, complete_examples(), make_spec(), tolerance=1e-5)
    report = error.value.report
    assert report.failed_tasks == ["takeover"]
    assert report.export_vs_model["takeover"] > 1e-3
    assert "fraud" not in str(error.value) and "segment" not in str(error.value)


def test_skew_report_without_raising(exported):
    model, saved_model_dir = exported
    head = model.get_layer("fraud_head")
    kernel, bias = head.get_weights()
    head.set_weights([kernel, bias + 1.0])
    report = check_skew(model, saved_model_dir, complete_examples(), make_spec(), tolerance=1e-5,
                        raise_on_skew=False)
    assert not report.ok and report.failed_tasks == ["fraud"]
    assert np.isfinite(report.export_vs_model["fraud"])


def test_a_regression_output_is_compared_in_units_of_its_labels_std(tmp_path):
    stats = RegressionStats({"train": LabelStats(count=10, mean=1.0e4, std=1.0e3, min=8.0e3, max=1.2e4)})
    spend = TaskSpec(name="spend", type="regression", label_key="spend", dtype="float32", stats=stats)
    spec = make_spec()
    spec = spec.model_copy(update={"tasks": [*spec.tasks, spend]})
    tasks = [*make_tasks(), RegressionTask("spend", spec=spend)]
    model = make_model(tasks)
    saved_model_dir = export_model(model, spec, tasks, tmp_path / "export").saved_model_dir
    head = model.get_layer("spend_head")
    kernel, bias = head.get_weights()
    # 2e-6 of a std is 2e-3 in the label's units: about two float32 steps of a value near 1e4.
    head.set_weights([kernel, bias + 2e-6])
    report = check_skew(model, saved_model_dir, complete_examples(), spec, tolerance=1e-4, tasks=tasks)
    assert report.ok and 0 < report.export_vs_model["spend"] < 1e-5
    head.set_weights([kernel, bias + 1e-3])  # 1 in the label's units
    with pytest.raises(SkewError, match=r"spend: max \|serving_default - model\| = 0\.001") as error:
        check_skew(model, saved_model_dir, complete_examples(), spec, tolerance=1e-4, tasks=tasks)
    assert error.value.report.failed_tasks == ["spend"]


def test_examples_must_be_serialized_bytes(tmp_path):
    model, saved_model_dir = make_model(make_tasks()), tmp_path
    with pytest.raises(ValueError, match="non-empty list"):
        check_skew(model, saved_model_dir, [], make_spec(), tolerance=1e-5)
    with pytest.raises(TypeError, match="got str"):
        check_skew(model, saved_model_dir, ["not bytes"], make_spec(), tolerance=1e-5)

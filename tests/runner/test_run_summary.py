"""What `mtl run` prints at the end, on the chief and on the other workers."""

from mtl_tf.runner.recipe_run import RunResult


def test_a_worker_that_is_not_the_chief_names_no_report_it_did_not_write(tmp_path):
    metrics = {"fraud": {"auc": 0.81}}
    worker = RunResult(run_dir=tmp_path, dataset_path=tmp_path / "dataset.json", report_path=None,
                       test_metrics=metrics, timings={"train": 1.0}).summary()
    assert "fraud: auc 0.8100" in worker
    assert "report:" not in worker and "export:" not in worker
    assert "not the chief" in worker and "time: train 1.0s" in worker

    chief = RunResult(run_dir=tmp_path, dataset_path=tmp_path / "dataset.json", report_path=tmp_path / "report.md",
                      test_metrics=metrics, timings={"train": 1.0}).summary()
    assert f"report: {tmp_path / 'report.md'}" in chief

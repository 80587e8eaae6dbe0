"""Running mtl on a cluster: scheduled Beam jobs, multi-worker training.

- :mod:`.cron`      five-field cron expressions, checked as Kubernetes CronJobs read them.
- :mod:`.runners`   the Beam runners a job may name, and the runner option in Beam arguments.
- :mod:`.schedule`  ``mtl pipeline schedule``: a kustomize overlay of ``k8s/base/data``
  whose CronJob runs ``mtl pipeline run ...`` on a schedule.
- :mod:`.tf_config` TF_CONFIG for MultiWorkerMirroredStrategy from an Indexed Job's pod index.

Nothing here imports TensorFlow, Beam or MLflow.
"""

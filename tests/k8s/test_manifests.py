"""k8s/: every kustomization renders offline, validates against the Kubernetes schemas, and
passes the checks the schemas cannot make; a broken copy fails them."""

import shutil

import pytest
import yaml

from mtl_tf.serving.model_config import ServedModelConfig, render_model_config
from tests.k8s.manifests import (K8S, containers, inference_service_problems, kustomizations, network_policy_problems,
                                 pod_problems, pod_templates, render, schema_problems, served_models, serving_problems)

FOLDERS = kustomizations()
SERVING_OVERLAYS = ["overlays/cpu", "overlays/gpu", "overlays/tpu"]


@pytest.fixture(scope="module")
def rendered():
    return {str(folder.relative_to(K8S)): render(folder) for folder in FOLDERS}


def test_the_expected_kustomizations_exist():
    names = {str(folder.relative_to(K8S)) for folder in FOLDERS}
    assert {"base/serving", "base/tracking", "base/data", "base/storage", "base/model-store",
            "base/training/multiworker", "base/training/single-gpu", "overlays/cpu", "overlays/gpu", "overlays/tpu",
            "overlays/kserve", "overlays/platform", "generated/fraud-signals"} <= names


@pytest.mark.parametrize("folder", [str(f.relative_to(K8S)) for f in FOLDERS])
def test_each_kustomization_validates_against_the_kubernetes_schemas(rendered, folder):
    problems, unknown = schema_problems(rendered[folder])
    assert problems == []
    assert [o["kind"] for o in unknown] == (["InferenceService"] if folder == "overlays/kserve" else [])
    assert pod_problems(rendered[folder]) == []


@pytest.mark.parametrize("folder", SERVING_OVERLAYS + ["base/serving"])
def test_the_probes_ask_for_the_model_the_config_serves(rendered, folder):
    objects = rendered[folder]
    assert serving_problems(objects) == []
    assert list(served_models(objects)) == ["fraud_signals"]
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "NetworkPolicy", "PersistentVolumeClaim",
                     "PodDisruptionBudget", "Service"]


def test_the_shipped_models_config_is_what_mtl_models_deploy_writes():
    written = render_model_config([ServedModelConfig("fraud_signals", "/models/fraud_signals", (1,), {"stable": 1})])
    assert (K8S / "base/serving/models.config").read_text() == written


def deployment(objects, name="tf-serving"):
    return next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == name)


def test_the_autoscaler_and_budget_act_on_the_serving_pods(rendered):
    objects = rendered["overlays/cpu"]
    hpa = next(o for o in objects if o["kind"] == "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "tf-serving"}
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    pdb = next(o for o in objects if o["kind"] == "PodDisruptionBudget")
    labels = deployment(objects)["spec"]["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in pdb["spec"]["selector"]["matchLabels"].items())
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_the_gpu_overlay_runs_the_gpu_image_on_gpu_nodes_with_a_gpu(rendered):
    spec = deployment(rendered["overlays/gpu"])["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["image"] == "tensorflow/serving:2.20.0-gpu"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert "--model_config_file=/etc/tf-serving/models.config" in container["args"]
    cpu = deployment(rendered["overlays/cpu"])["spec"]["template"]["spec"]["containers"][0]
    assert cpu["image"] == "tensorflow/serving:2.20.0" and "nvidia.com/gpu" not in cpu["resources"]["limits"]


def test_the_tpu_overlay_asks_gke_for_tpu_nodes_and_chips(rendered):
    spec = deployment(rendered["overlays/tpu"])["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert spec["nodeSelector"]["cloud.google.com/gke-tpu-accelerator"] == "tpu-v5-lite-podslice"
    assert spec["nodeSelector"]["cloud.google.com/gke-tpu-topology"] == "1x1"
    assert container["resources"]["limits"]["google.com/tpu"] == container["resources"]["requests"]["google.com/tpu"]
    assert {"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]


def test_the_kserve_variant_sets_the_runtime_version_and_storage(rendered):
    services = [o for o in rendered["overlays/kserve"] if o["kind"] == "InferenceService"]
    assert len(services) == 1 and inference_service_problems(services[0]) == []
    model = services[0]["spec"]["predictor"]["model"]
    assert model["runtimeVersion"] == "2.20.0" and model["storageUri"] == "pvc://tf-serving-models/fraud_signals"
    claims = [o["metadata"]["name"] for o in rendered["overlays/kserve"] if o["kind"] == "PersistentVolumeClaim"]
    assert claims == ["tf-serving-models"]


def test_network_policies_select_real_pods(rendered):
    every_pod = [t["metadata"].get("labels", {}) for objects in rendered.values() for _, t in pod_templates(objects)]
    for folder, objects in rendered.items():
        assert network_policy_problems(objects, every_pod) == [], folder
    policies = {o["metadata"]["name"]: o for o in rendered["overlays/platform"] if o["kind"] == "NetworkPolicy"}
    assert set(policies) == {"mlflow-clients", "mlflow-postgres-from-mlflow"}
    clients = policies["mlflow-clients"]["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    reaching = sorted({o["metadata"]["name"] for objects in rendered.values() for o, t in pod_templates(objects)
                       if all(t["metadata"].get("labels", {}).get(k) == v for k, v in clients.items())})
    assert reaching == ["mtl-pipeline", "mtl-pipeline-fraud-signals", "mtl-train-gpu", "mtl-train-multiworker"]
    database = policies["mlflow-postgres-from-mlflow"]["spec"]["ingress"][0]["from"][0]["podSelector"]
    assert database == {"matchLabels": {"app.kubernetes.io/name": "mlflow"}}


def test_the_multiworker_job_has_one_indexed_pod_per_worker_behind_a_headless_service(rendered):
    objects = rendered["base/training/multiworker"]
    job = next(o for o in objects if o["kind"] == "Job")
    service = next(o for o in objects if o["kind"] == "Service")
    spec, template = job["spec"], job["spec"]["template"]
    env = {e["name"]: e for e in template["spec"]["containers"][0]["env"]}
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == int(
        env["MTL_WORKERS"]["value"])
    assert service["spec"]["clusterIP"] == "None" and template["spec"]["subdomain"] == service["metadata"]["name"]
    assert env["MTL_WORKER_SERVICE"]["value"] == service["metadata"]["name"]
    assert all(template["metadata"]["labels"][k] == v for k, v in service["spec"]["selector"].items())
    assert env["MTL_JOB_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['batch.kubernetes.io/job-name']"
    assert service["spec"]["ports"][0]["port"] == int(env["MTL_WORKER_PORT"]["value"])


def test_postgres_keeps_its_data_on_a_claim_and_its_password_in_a_secret(rendered):
    objects = rendered["base/tracking"]
    database = next(o for o in objects if o["kind"] == "StatefulSet")
    secret = next(o for o in objects if o["kind"] == "Secret")
    env = {e["name"]: e for e in database["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
    assert database["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    headless = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "mlflow-postgres")
    assert headless["spec"]["clusterIP"] == "None" and database["spec"]["serviceName"] == "mlflow-postgres"
    mlflow = deployment(objects, "mlflow")["spec"]["template"]["spec"]["containers"][0]
    assert any(a.startswith("--artifacts-destination=") for a in mlflow["args"])
    assert "--backend-store-uri=postgresql+psycopg2://mlflow:$(POSTGRES_PASSWORD)@mlflow-postgres:5432/mlflow" in mlflow["args"]


def broken_copy(tmp_path, path, edit):
    """k8s/ copied to tmp_path with one file edited."""
    root = tmp_path / "k8s"
    shutil.copytree(K8S, root)
    target = root / path
    documents = list(yaml.safe_load_all(target.read_text()))
    edit(documents)
    target.write_text(yaml.safe_dump_all(documents))
    return root


def test_the_checks_catch_a_container_without_limits(tmp_path):
    def drop_limits(documents):
        del documents[0]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]

    root = broken_copy(tmp_path, "base/serving/deployment.yaml", drop_limits)
    problems = pod_problems(render(root / "overlays/cpu"))
    assert problems == ["Deployment/tf-serving container tf-serving: no limits cpu",
                        "Deployment/tf-serving container tf-serving: no limits memory"]


def test_the_checks_catch_a_writable_root_an_added_capability_and_root(tmp_path):
    def loosen(documents):
        container = documents[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        container["securityContext"].update(readOnlyRootFilesystem=False, runAsUser=0, capabilities={"add": ["NET_RAW"]})

    root = broken_copy(tmp_path, "base/data/cronjob.yaml", loosen)
    problems = pod_problems(render(root / "base/data"))
    where = "CronJob/mtl-pipeline container pipeline: "
    assert problems == [where + "readOnlyRootFilesystem is not true", where + "capabilities do not drop ALL",
                        where + "capabilities add ['NET_RAW']", where + "runAsUser is 0"]


def test_the_checks_catch_a_probe_for_another_model_and_a_stray_selector(tmp_path):
    def other_model(documents):
        container = documents[0]["spec"]["template"]["spec"]["containers"][0]
        container["readinessProbe"]["httpGet"]["path"] = "/v1/models/fraud"

    root = broken_copy(tmp_path, "base/serving/deployment.yaml", other_model)
    problems = serving_problems(render(root / "overlays/gpu"))
    assert problems == ["Deployment/tf-serving container tf-serving readinessProbe: path '/v1/models/fraud' is not "
                        "/v1/models/NAME for a model of models.config (fraud_signals)"]

    def typo(documents):
        documents[1]["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] = "mlflw"

    root = broken_copy(tmp_path / "np", "base/tracking/networkpolicy.yaml", typo)
    objects = render(root / "overlays/platform")
    pods = [t["metadata"]["labels"] for _, t in pod_templates(objects)]
    assert network_policy_problems(objects, pods) == [
        "NetworkPolicy/mlflow-postgres-from-mlflow: from podSelector {'app.kubernetes.io/name': 'mlflw'} matches no pod"]


def test_the_checks_catch_an_inference_service_on_the_default_runtime(tmp_path):
    def default_runtime(documents):
        del documents[0]["spec"]["predictor"]["model"]["runtimeVersion"]
        documents[0]["spec"]["predictor"]["model"]["storageUrl"] = "gs://bucket/model"

    root = broken_copy(tmp_path, "overlays/kserve/inferenceservice.yaml", default_runtime)
    service = next(o for o in render(root / "overlays/kserve") if o["kind"] == "InferenceService")
    problems = inference_service_problems(service)
    assert "InferenceService/fraud-signals: unknown field spec.predictor.model.storageUrl" in problems
    assert any("runtimeVersion None must name a TF Serving release" in p for p in problems)


def test_the_schemas_catch_a_misspelt_field(tmp_path):
    def misspell(documents):
        documents[0]["spec"]["minReplica"] = documents[0]["spec"].pop("minReplicas")

    root = broken_copy(tmp_path, "base/serving/hpa.yaml", misspell)
    problems, _ = schema_problems(render(root / "overlays/cpu"))
    assert problems == ["HorizontalPodAutoscaler/tf-serving: spec: Additional properties are not allowed "
                        "('minReplica' was unexpected)"]


def test_every_container_of_the_overlays_is_checked(rendered):
    """The checks see init containers too: an init container without a security context fails."""
    objects = yaml.safe_load(yaml.safe_dump(rendered["overlays/cpu"]))
    template = next(t for _, t in pod_templates(objects))
    template["spec"]["initContainers"] = [{"name": "fetch", "image": "busybox", "volumeMounts": []}]
    assert len(containers(template)) == 2
    problems = pod_problems(objects)
    assert "Deployment/tf-serving container fetch: no requests cpu" in problems
    assert "Deployment/tf-serving container fetch: readOnlyRootFilesystem is not true" in problems

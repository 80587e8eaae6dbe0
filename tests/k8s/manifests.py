"""Rendering the kustomizations of k8s/ and checking what the Kubernetes schemas cannot see.

- :func:`render`: ``kubectl kustomize DIR`` (offline), parsed into objects.
- :func:`schema_problems`: every object against the Kubernetes 1.32 JSON schemas, strict
  (``kubernetes-validate``); kinds without a schema (KServe's InferenceService) are
  returned apart, for :func:`inference_service_problems`.
- :func:`pod_problems`: every container and init container of every pod template runs as
  non-root with a read-only root filesystem (and an emptyDir at /tmp), no privilege
  escalation, every capability dropped, the RuntimeDefault seccomp profile, and requests and
  limits for CPU and memory (requests <= limits; extended resources such as GPUs equal).
- :func:`serving_problems`: TF Serving's probes ask for a model the ConfigMap's
  ``models.config`` serves, on the container's REST port, which the Service exposes.
- :func:`network_policy_problems`: each policy selects pods that exist, and each ``from``
  selector matches pods that exist (or is one of the documented client labels).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
KUBERNETES_VERSION = "1.32"
# Client labels that pods outside this repository carry to reach a service.
CLIENT_LABELS = {("mtl.serving/client", "true")}
_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template"), "StatefulSet": ("spec", "template"), "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"), "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        raise RuntimeError("kubectl is needed to render k8s/ (kubectl kustomize works offline); install kubectl >= 1.27")
    return path


def kustomizations(root: Path = K8S) -> list[Path]:
    """Every folder under ``root`` holding a kustomization that builds on its own (not a Component)."""
    found = []
    for path in sorted(root.rglob("kustomization.yaml")):
        if yaml.safe_load(path.read_text()).get("kind") != "Component":
            found.append(path.parent)
    return found


def render(folder: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize folder``, as objects; raises with kustomize's message if it fails."""
    done = subprocess.run([kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise ValueError(f"kubectl kustomize {folder} failed: {done.stderr.strip()}")
    return [obj for obj in yaml.safe_load_all(done.stdout) if obj]


def name(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def schema_problems(objects: Iterable[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """(problems, objects of kinds without a schema)."""
    import kubernetes_validate

    problems, unknown = [], []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            unknown.append(obj)
        except kubernetes_validate.ValidationError as error:
            where = "/".join(str(p) for p in error.path)
            problems.append(f"{name(obj)}: {where}: {error.message}")
    return problems, unknown


def pod_templates(objects: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(owner, pod template) for every workload (a Pod is its own template)."""
    for obj in objects:
        if obj["kind"] == "Pod":
            yield obj, obj
        elif obj["kind"] in _TEMPLATE_PATHS:
            node = obj
            for key in _TEMPLATE_PATHS[obj["kind"]]:
                node = node[key]
            yield obj, node


def containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    spec = template["spec"]
    return list(spec.get("initContainers", [])) + list(spec.get("containers", []))


def pod_problems(objects: Iterable[dict[str, Any]]) -> list[str]:
    problems = []
    for owner, template in pod_templates(objects):
        spec = template["spec"]
        pod = spec.get("securityContext", {})
        tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for container in containers(template):
            where = f"{name(owner)} container {container['name']}"
            problems += [f"{where}: {p}" for p in _security(container.get("securityContext", {}), pod)]
            problems += [f"{where}: {p}" for p in resource_problems(container.get("resources", {}))]
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            if mounts.get("/tmp") not in tmp_volumes:
                problems.append(f"{where}: no emptyDir mounted at /tmp (the root filesystem is read-only)")
    return problems


def _security(context: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    problems = []
    if context.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if "ALL" not in context.get("capabilities", {}).get("drop", []):
        problems.append("capabilities do not drop ALL")
    if context.get("capabilities", {}).get("add"):
        problems.append(f"capabilities add {context['capabilities']['add']}")
    if context.get("privileged"):
        problems.append("privileged")
    if context.get("runAsNonRoot", pod.get("runAsNonRoot")) is not True:
        problems.append("runAsNonRoot is not true (container or pod)")
    if context.get("runAsUser", pod.get("runAsUser", 1)) == 0:
        problems.append("runAsUser is 0")
    seccomp = context.get("seccompProfile", pod.get("seccompProfile", {}))
    if seccomp.get("type") != "RuntimeDefault":
        problems.append(f"seccompProfile is {seccomp.get('type')!r}, not RuntimeDefault")
    return problems


def resource_problems(resources: dict[str, Any]) -> list[str]:
    requests, limits = resources.get("requests", {}), resources.get("limits", {})
    problems = [f"no {kind} {resource}" for kind, given in (("requests", requests), ("limits", limits))
                for resource in ("cpu", "memory") if resource not in given]
    for resource in set(requests) & set(limits):
        low, high = quantity(requests[resource]), quantity(limits[resource])
        if "/" in resource and low != high:
            problems.append(f"{resource}: requests {requests[resource]} and limits {limits[resource]} differ")
        elif low > high:
            problems.append(f"{resource}: requests {requests[resource]} above limits {limits[resource]}")
    for resource in set(limits) - set(requests):
        if "/" in resource:
            problems.append(f"{resource}: in limits but not in requests")
    return problems


_SUFFIXES = {"m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2 ** 10, "Mi": 2 ** 20,
             "Gi": 2 ** 30, "Ti": 2 ** 40}


def quantity(value: Any) -> float:
    """A Kubernetes quantity (``500m``, ``2``, ``4Gi``) as a number."""
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value))
    if match is None or match.group(2) not in _SUFFIXES:
        raise ValueError(f"not a quantity: {value!r}")
    return float(match.group(1)) * _SUFFIXES[match.group(2)]


def served_models(objects: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Model name -> config entry of the ``models.config`` in the tf-serving-config ConfigMap."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    for obj in objects:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "tf-serving-config":
            config = text_format.Parse(obj["data"]["models.config"], model_server_config_pb2.ModelServerConfig())
            return {entry.name: entry for entry in config.model_config_list.config}
    return {}


def serving_problems(objects: list[dict[str, Any]]) -> list[str]:
    models = served_models(objects)
    problems = [] if models else ["no ConfigMap tf-serving-config with a models.config"]
    services = [o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "tf-serving"]
    for owner, template in pod_templates(objects):
        for container in template["spec"]["containers"]:
            if not container.get("command", [""])[0].endswith("tensorflow_model_server"):
                continue
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            where = f"{name(owner)} container {container['name']}"
            if ports.get("grpc") != 8500 or ports.get("rest") != 8501:
                problems.append(f"{where}: ports {ports}, expected grpc 8500 and rest 8501")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                problems += [f"{where} {probe}: {p}" for p in _probe(container.get(probe), models, ports)]
            label = owner["metadata"].get("labels", {}).get("mtl.serving/model")
            if label not in models:
                problems.append(f"{where}: label mtl.serving/model {label!r} is not a model of models.config "
                                f"({', '.join(models)})")
            problems += _exposed(services, template, label)
    return problems


def _probe(probe: dict[str, Any] | None, models: dict[str, Any], ports: dict[str, int]) -> list[str]:
    if probe is None:
        return ["missing"]
    get = probe.get("httpGet")
    if get is None:
        return ["not an httpGet probe of the REST API"]
    match = re.fullmatch(r"/v1/models/([^/]+)", get.get("path", ""))
    problems = []
    if match is None or match.group(1) not in models:
        problems.append(f"path {get.get('path')!r} is not /v1/models/NAME for a model of models.config "
                        f"({', '.join(models) or 'none'})")
    if get.get("port") not in ("rest", ports.get("rest")):
        problems.append(f"port {get.get('port')!r} is not the REST port")
    return problems


def _exposed(services: list[dict[str, Any]], template: dict[str, Any], model: str | None) -> list[str]:
    if not services:
        return ["no Service tf-serving"]
    service = services[0]
    labels = template["metadata"].get("labels", {})
    problems = []
    if not selects(service["spec"].get("selector", {}), labels):
        problems.append(f"Service tf-serving selector {service['spec'].get('selector')} does not select the pods")
    targets = {(p["port"], p.get("targetPort")) for p in service["spec"]["ports"]}
    if not {(8500, "grpc"), (8501, "rest")} <= targets:
        problems.append(f"Service tf-serving ports {sorted(targets, key=str)}: expected 8500 -> grpc, 8501 -> rest")
    if service["metadata"].get("labels", {}).get("mtl.serving/model") != model:
        problems.append(f"Service tf-serving label mtl.serving/model is not {model!r}")
    return problems


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _match_labels(selector: dict[str, Any]) -> dict[str, str]:
    if set(selector) - {"matchLabels"}:
        raise ValueError(f"only matchLabels selectors are checked; received {selector}")
    return dict(selector.get("matchLabels", {}))


def network_policy_problems(policies: Iterable[dict[str, Any]], pods: list[dict[str, str]]) -> list[str]:
    """``pods``: the labels of every pod template the policies may speak of."""
    problems = []
    for policy in policies:
        if policy["kind"] != "NetworkPolicy":
            continue
        target = _match_labels(policy["spec"]["podSelector"])
        if not any(selects(target, labels) for labels in pods):
            problems.append(f"{name(policy)}: podSelector {target} selects no pod")
        for rule in policy["spec"].get("ingress", []):
            if not rule.get("from"):
                problems.append(f"{name(policy)}: an ingress rule without 'from' admits every pod")
            for peer in rule.get("from", []):
                wanted = _match_labels(peer.get("podSelector", {}))
                if not wanted:
                    problems.append(f"{name(policy)}: a peer without podSelector admits whole namespaces")
                elif set(wanted.items()) <= CLIENT_LABELS:
                    continue
                elif not any(selects(wanted, labels) for labels in pods):
                    problems.append(f"{name(policy)}: from podSelector {wanted} matches no pod")
            if not rule.get("ports"):
                problems.append(f"{name(policy)}: an ingress rule without ports opens every port")
    return problems


def inference_service_problems(obj: dict[str, Any]) -> list[str]:
    """What KServe needs of a TF Serving InferenceService, and our pod rules on its predictor."""
    where = name(obj)
    problems = []
    if obj.get("apiVersion") != "serving.kserve.io/v1beta1":
        problems.append(f"{where}: apiVersion {obj.get('apiVersion')!r}, expected serving.kserve.io/v1beta1")
    predictor = obj.get("spec", {}).get("predictor", {})
    model = predictor.get("model")
    if not isinstance(model, dict):
        return problems + [f"{where}: spec.predictor.model is missing"]
    allowed = {"modelFormat", "runtime", "runtimeVersion", "storageUri", "protocolVersion", "resources", "env",
               "securityContext", "args", "ports", "volumeMounts", "name", "image", "command", "readinessProbe",
               "livenessProbe", "storage"}
    problems += [f"{where}: unknown field spec.predictor.model.{key}" for key in sorted(set(model) - allowed)]
    if model.get("modelFormat", {}).get("name") != "tensorflow":
        problems.append(f"{where}: predictor.model.modelFormat.name is {model.get('modelFormat')}, expected tensorflow")
    version = model.get("runtimeVersion")
    if not isinstance(version, str) or not re.fullmatch(r"2\.\d+\.\d+(-gpu)?", version) or version.startswith("2.6."):
        problems.append(f"{where}: predictor.model.runtimeVersion {version!r} must name a TF Serving release (a "
                        "string such as '2.20.0'; KServe's default 2.6.2 cannot load TensorFlow 2.21 exports)")
    if not re.match(r"^(pvc|gs|s3|https?)://\S+", str(model.get("storageUri", ""))):
        problems.append(f"{where}: predictor.model.storageUri {model.get('storageUri')!r} is not pvc://, gs://, "
                        "s3:// or http(s)://")
    problems += [f"{where}: predictor.model: {p}" for p in resource_problems(model.get("resources", {}))]
    problems += [f"{where}: predictor.model: {p}" for p in _security(model.get("securityContext", {}),
                                                                     predictor.get("securityContext", {}))]
    for key in ("minReplicas", "maxReplicas"):
        if not isinstance(predictor.get(key), int):
            problems.append(f"{where}: predictor.{key} must be an integer")
    return problems

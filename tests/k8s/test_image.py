"""The container image and the manifests agree: one image and tag (set once), the Dockerfile's
user is the pods' runAsUser, and every command the manifests run is a real command."""

import re
from configparser import ConfigParser

import click
import pytest
import yaml

from tests.k8s.commands import container_env, resolve_mlflow, resolve_mtl
from tests.k8s.manifests import K8S, REPO, kustomizations, pod_templates, render

DOCKERFILE = REPO / "Dockerfile"
MTL_IMAGE = "ghcr.io/your-org/mtl-tf"


@pytest.fixture(scope="module")
def containers():
    """(folder, owner, pod spec, container) of every container of every kustomization."""
    found = []
    for folder in kustomizations():
        for owner, template in pod_templates(render(folder)):
            for container in template["spec"].get("initContainers", []) + template["spec"]["containers"]:
                found.append((str(folder.relative_to(K8S)), owner, template["spec"], container))
    return found


def mtl_containers(containers):
    return [c for c in containers if c[3]["image"].startswith(MTL_IMAGE + ":")]


def dockerfile_lines():
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def package_version():
    parser = ConfigParser()
    parser.read(REPO / "setup.cfg")
    return parser["metadata"]["version"]


def test_the_image_is_set_once_and_tagged_with_the_package_version(containers):
    component = yaml.safe_load((K8S / "components/images/kustomization.yaml").read_text())
    images = {image["name"]: image for image in component["images"]}
    assert images["mtl-tf"] == {"name": "mtl-tf", "newName": MTL_IMAGE, "newTag": package_version()}
    assert images["mtl-tf-gpu"]["newTag"] == f"{package_version()}-gpu"
    used = {c[3]["image"] for c in mtl_containers(containers)}
    assert used == {f"{MTL_IMAGE}:{package_version()}", f"{MTL_IMAGE}:{package_version()}-gpu"}
    for path in K8S.rglob("*.yaml"):
        text = path.read_text()
        assert MTL_IMAGE not in text or path.parent.name == "images", f"{path} names the image itself"


def test_the_dockerfile_builds_a_wheel_then_installs_it_as_a_fixed_non_root_user(containers):
    lines = dockerfile_lines()
    stages = [re.match(r"FROM (\S+) AS (\w+)", line, re.I) for line in lines if line.upper().startswith("FROM ")]
    assert [s.group(2) for s in stages] == ["builder", "runtime"]
    arguments = dict(re.match(r"ARG (\w+)=(\S+)", line).groups() for line in lines if re.match(r"ARG \w+=", line))
    base = arguments["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-bookworm", base), base  # a pinned tag, not latest
    assert any("bdist_wheel" in line or "build --wheel" in line for line in lines)
    assert any(line.startswith("COPY --from=builder") for line in lines)
    user = next(line for line in lines if line.startswith("USER "))
    uid = int(user.split()[1].split(":")[0])
    assert uid >= 10000 and any(f"--uid {uid}" in line for line in lines)
    assert next(line for line in lines if line.startswith("ENTRYPOINT")) == 'ENTRYPOINT ["mtl"]'
    for folder, owner, spec, container in mtl_containers(containers):
        assert spec["securityContext"]["runAsUser"] == uid, (folder, owner["metadata"]["name"])


def test_the_gpu_variant_installs_tensorflow_with_cuda():
    text = DOCKERFILE.read_text()
    assert "ARG VARIANT=cpu" in text and 'tensorflow[and-cuda]' in text and '"$VARIANT" = "gpu"' in text


def test_every_mtl_container_runs_a_real_mtl_command(containers):
    ran = set()
    for folder, owner, spec, container in mtl_containers(containers):
        if "command" in container:
            continue
        for path in resolve_mtl(container["args"], container_env(container)):
            ran.add(" ".join(path))
    assert ran == {"pipeline run", "cluster run-worker", "run"}


def test_the_recipes_the_manifests_name_are_baked_into_the_image(containers):
    assert any(re.match(r"COPY recipes/? /opt/mtl/recipes/?$", line) for line in dockerfile_lines())
    named = {arg for *_, container in mtl_containers(containers) for arg in container.get("args", [])
             if arg.startswith("/opt/mtl/recipes/")}
    assert named
    for path in named:
        assert (REPO / "recipes" / path.removeprefix("/opt/mtl/recipes/")).is_file(), path


def test_the_mlflow_server_command_is_one_this_mlflow_accepts(containers):
    servers = {tuple(c["args"]) for *_, c in containers if c.get("command") == ["mlflow"]}
    assert len(servers) == 1
    assert resolve_mlflow(list(servers.pop())) == ["server"]


def test_a_manifest_with_a_misspelt_command_or_option_is_caught():
    with pytest.raises(click.UsageError, match="No such command 'pipline'"):
        resolve_mtl(["pipline", "run", "/opt/mtl/recipes/fraud_signals.yaml"])
    with pytest.raises(click.UsageError, match="No such option.*--resum"):
        resolve_mtl(["models", "list", "--resum"])
    with pytest.raises(click.UsageError, match="Missing .*workers"):
        resolve_mtl(["cluster", "run-worker", "--", "run", "r.yaml"], {"MTL_WORKER_SERVICE": "s",
                                                                         "JOB_COMPLETION_INDEX": "0"})
    with pytest.raises(click.UsageError, match="No such command 'trian'"):
        resolve_mtl(["cluster", "run-worker", "--", "trian"], {"MTL_WORKERS": "2", "MTL_WORKER_SERVICE": "s",
                                                                "JOB_COMPLETION_INDEX": "0"})
    with pytest.raises(click.UsageError, match="No such option.*--allowed-host"):
        resolve_mlflow(["server", "--allowed-host=x"])

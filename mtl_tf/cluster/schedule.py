"""``mtl pipeline schedule``: the preprocessing (and training) of a recipe as a Kubernetes CronJob.

The CronJob comes from the kustomize base ``k8s/base/data`` (security context, resources,
the work claim, the image set once in ``k8s/components/images``): the generated folder is an
overlay of it that renames the CronJob after the recipe, patches in the schedule and the
command line and turns it on (the base's CronJob is a suspended template), so it is
applied with ``kubectl apply -k DIR`` and renders offline with ``kubectl kustomize DIR``.
The container runs exactly the command ``mtl pipeline run`` runs locally (printed by
:meth:`Schedule.local_command`).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import yaml

from mtl_tf.cluster.cron import check_cron
from mtl_tf.cluster.runners import with_runner

BASE_CRONJOB = "mtl-pipeline"
CONTAINER = "pipeline"
CONTAINER_RECIPES = "/opt/mtl/recipes"
DEFAULT_BASE = Path("k8s") / "base" / "data"
DEFAULT_OUT = Path("k8s") / "generated"
KUSTOMIZATION = "kustomization.yaml"
PATCH = "cronjob-patch.yaml"
MAX_CRONJOB_NAME = 52  # Kubernetes appends an 11-character suffix to a CronJob's Job names


@dataclass(frozen=True)
class Schedule:
    """One scheduled job: its CronJob name, cron expression, time zone and mtl arguments."""

    recipe_name: str
    cron: str
    args: tuple[str, ...]
    time_zone: str | None = None

    @property
    def suffix(self) -> str:
        return f"-{slug(self.recipe_name)}"

    @property
    def cronjob_name(self) -> str:
        return f"{BASE_CRONJOB}{self.suffix}"

    def local_command(self, recipe_path: str) -> str:
        """The same job now, here: ``mtl pipeline run ...`` with the local recipe path."""
        args = list(self.args)
        args[2] = recipe_path
        return shlex.join(["mtl", *args])


def make_schedule(recipe_name: str, cron: str, container_recipe: str, overrides: Sequence[str] = (),
                  beam_args: Sequence[str] = (), runner: str | None = None, train: bool = False,
                  time_zone: str | None = None) -> Schedule:
    """Checks the cron expression, the runner and the time zone, and builds the job's command line.

    Raises:
        ValueError: a bad cron expression, an unknown runner or time zone, or a recipe name
            too long for a CronJob name.
    """
    beam = with_runner(beam_args, runner)
    args = ["pipeline", "run", container_recipe]
    for item in overrides:
        args += ["--set", item]
    if train:
        args.append("--train")
    schedule = Schedule(recipe_name=recipe_name, cron=check_cron(cron), args=tuple(args + beam),
                        time_zone=check_time_zone(time_zone))
    if len(schedule.cronjob_name) > MAX_CRONJOB_NAME:
        raise ValueError(f"the CronJob name {schedule.cronjob_name!r} is longer than {MAX_CRONJOB_NAME} characters; "
                         "pass --name with a shorter one")
    return schedule


def check_time_zone(name: str | None) -> str | None:
    """An IANA time zone name (``Europe/Paris``, ``Etc/UTC``), or None for the base's."""
    if name is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Etc/UTC or Europe/Paris") from None
    return name


def slug(name: str) -> str:
    """A DNS-label form of a recipe name (``fraud_signals`` -> ``fraud-signals``)."""
    text = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not text:
        raise ValueError(f"cannot name a CronJob after {name!r}; pass --name")
    return text


def container_recipe_path(recipe_path: str | Path, given: str | None = None) -> str:
    """Where the recipe is inside the image: ``given``, else ``/opt/mtl/recipes/<file name>``."""
    return given or f"{CONTAINER_RECIPES}/{Path(recipe_path).name}"


def find_base(base: str | Path | None = None) -> Path:
    """The data base folder: ``base``, else ``k8s/base/data`` under the working directory.

    Raises:
        FileNotFoundError: no kustomization there.
    """
    folder = Path(base) if base is not None else DEFAULT_BASE
    if not (folder / KUSTOMIZATION).is_file():
        where = "--base" if base is not None else "the working directory"
        raise FileNotFoundError(f"no kustomize base at {str(folder)!r} ({where}); run from the repository root, "
                                "which holds k8s/base/data, or pass --base PATH")
    return folder


def overlay_files(schedule: Schedule, out_dir: Path, base: Path, command: str = "") -> dict[str, str]:
    """File name -> text of the overlay in ``out_dir`` (which need not exist yet)."""
    relative = os.path.relpath(base.resolve(), out_dir.resolve())
    header = f"# Written by: {command}\n" if command else ""
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [Path(relative).as_posix()],
        "nameSuffix": schedule.suffix,
        "labels": [{"pairs": {"mtl.pipeline/recipe": label_value(schedule.recipe_name)}}],
        "patches": [{"path": PATCH}],
    }
    spec = {"schedule": schedule.cron, "suspend": False}
    if schedule.time_zone:
        spec["timeZone"] = schedule.time_zone
    spec["jobTemplate"] = {"spec": {"template": {"spec": {"containers": [
        {"name": CONTAINER, "args": list(schedule.args)}]}}}}
    patch = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": BASE_CRONJOB}, "spec": spec}
    return {KUSTOMIZATION: header + yaml.safe_dump(kustomization, sort_keys=False),
            PATCH: header + yaml.safe_dump(patch, sort_keys=False)}


def label_value(text: str) -> str:
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63].strip("-_.")
    return value or "recipe"


def write_overlay(schedule: Schedule, out_dir: str | Path, base: Path, command: str = "") -> Path:
    """Writes the overlay into ``out_dir``; returns the kustomization's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for file_name, text in overlay_files(schedule, out, base, command).items():
        (out / file_name).write_text(text)
    return out / KUSTOMIZATION


def render_overlay(schedule: Schedule, base: Path) -> str:
    """The CronJob as ``kubectl kustomize`` renders the overlay (written to a temporary folder).

    Raises:
        FileNotFoundError: kubectl is not on PATH.
        ValueError: kustomize failed.
    """
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise FileNotFoundError("--out - renders the CronJob with `kubectl kustomize`, and kubectl is not on PATH; "
                                "write the overlay with --out DIR instead")
    with tempfile.TemporaryDirectory(prefix="mtl-schedule-") as folder:
        write_overlay(schedule, folder, base)
        done = subprocess.run([kubectl, "kustomize", folder], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise ValueError(f"kubectl kustomize failed on the generated overlay: {done.stderr.strip()}")
    return done.stdout

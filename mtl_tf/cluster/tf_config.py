"""TF_CONFIG for MultiWorkerMirroredStrategy, from the pod index of an Indexed Job.

An Indexed Job with ``subdomain`` set to a headless Service gives pod ``i`` the DNS name
``<job>-<i>.<service>``; Kubernetes sets ``JOB_COMPLETION_INDEX`` in each pod. Worker 0 is
the chief (it tracks, exports and registers).
"""

from __future__ import annotations

import json
import re
from typing import Any

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DEFAULT_PORT = 12345


def tf_config(workers: int, index: int, job_name: str, service: str, port: int = DEFAULT_PORT) -> dict[str, Any]:
    """The TF_CONFIG of worker ``index`` of ``workers``.

    Raises:
        ValueError: workers < 1, an index outside [0, workers), a name that is not a DNS
            label, or a port outside 1-65535.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1; received {workers}")
    if not 0 <= index < workers:
        raise ValueError(f"the worker index must be in [0, {workers}) for {workers} worker(s); received {index} "
                         "(JOB_COMPLETION_INDEX of an Indexed Job with completions = workers)")
    for what, value in (("job name", job_name), ("service", service)):
        if not value or len(value) > 63 or not _DNS_LABEL.match(value):
            raise ValueError(f"the {what} must be a DNS label (lowercase letters, digits, '-'); received {value!r}")
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be in 1-65535; received {port}")
    hosts = [f"{job_name}-{i}.{service}:{port}" for i in range(workers)]
    return {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}


def job_name_from_hostname(hostname: str, index: int) -> str:
    """``<job>`` from an Indexed Job pod's hostname ``<job>-<index>``.

    Raises:
        ValueError: the hostname does not end with ``-<index>``.
    """
    suffix = f"-{index}"
    if not hostname.endswith(suffix) or len(hostname) == len(suffix):
        raise ValueError(f"hostname {hostname!r} is not '<job>-{index}' (an Indexed Job's pod); set MTL_JOB_NAME "
                         "or pass --job-name")
    return hostname[: -len(suffix)]


def dumps(config: dict[str, Any]) -> str:
    return json.dumps(config, separators=(",", ":"))

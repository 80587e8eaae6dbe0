"""TF Serving clients: the REST and gRPC predict requests for serialized tf.Examples.

REST (port 8501): ``POST /v1/models/NAME[/labels/LABEL|/versions/N]:predict`` with
``{"signature_name": ..., "instances": [{"examples": {"b64": ...}}, ...]}``, the row format
with the signature's one string input named (``examples`` for ``serving_default`` and
``predict_<task>``); ``{"b64": ...}`` is how TF Serving takes binary strings in JSON. The
answer is ``{"predictions": [...]}``: one object per row keyed by output name, or, for a
signature with a single output, the bare values (which is why the caller passes the output
names).

gRPC (port 8500): ``PredictionService/Predict`` with a ``PredictRequest`` whose
``inputs["examples"]`` is a ``DT_STRING`` TensorProto of shape ``[rows]``; the answer's
``outputs`` map names every output. Needs ``tensorflow-serving-api`` (the ``serving`` extra),
imported only when gRPC is used.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any, Mapping, Sequence

import numpy as np

EXAMPLES_INPUT = "examples"
PROTOCOLS = ("rest", "grpc")
GRPC_MISSING = ("gRPC needs the tensorflow-serving-api package (the 'serving' extra): "
                "pip install 'mtl_tf[serving]'")


def model_path(name: str, label: str | None = None, version: int | None = None) -> str:
    """``/v1/models/NAME``, with ``/labels/LABEL`` or ``/versions/N`` when given."""
    if label is not None and version is not None:
        raise ValueError(f"ask for a label or a version, not both; received label {label!r} and version {version}")
    path = f"/v1/models/{name}"
    if label is not None:
        return f"{path}/labels/{label}"
    return f"{path}/versions/{version}" if version is not None else path


def base_url(server: str) -> str:
    """``http://HOST:PORT`` from ``HOST:PORT`` or a URL."""
    server = server.strip().rstrip("/")
    if "://" in server:
        if not server.startswith(("http://", "https://")):
            raise ValueError(f"a REST server is http://HOST:PORT or HOST:PORT; received {server!r}")
        return server
    return f"http://{host_port(server)}"


def host_port(server: str) -> str:
    """``HOST:PORT``, checked."""
    server = server.strip()
    if "://" in server:
        server = server.split("://", 1)[1].rstrip("/")
    host, _, port = server.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"server must be HOST:PORT (e.g. localhost:8501 for REST, localhost:8500 for gRPC); "
                         f"received {server!r}")
    return server


def rest_request(examples: Sequence[bytes], signature: str, input_name: str = EXAMPLES_INPUT) -> dict[str, Any]:
    """The JSON body of a REST predict call for serialized tf.Examples."""
    instances = [{input_name: {"b64": base64.b64encode(example).decode("ascii")}} for example in examples]
    return {"signature_name": signature, "instances": instances}


def rest_outputs(body: Mapping[str, Any], output_names: Sequence[str]) -> dict[str, np.ndarray]:
    """Output name -> values (one per row) from a REST predict answer.

    Raises:
        ValueError: the answer is an error, or has neither ``predictions`` nor ``outputs``.
    """
    if "error" in body:
        raise ValueError(f"TF Serving refused the request: {body['error']}")
    if "predictions" in body:
        rows = body["predictions"]
        if rows and isinstance(rows[0], Mapping):
            return {name: np.asarray([row[name] for row in rows]) for name in rows[0]}
        return {_single(output_names): np.asarray(rows)}
    if "outputs" in body:
        outputs = body["outputs"]
        if isinstance(outputs, Mapping):
            return {name: np.asarray(values) for name, values in outputs.items()}
        return {_single(output_names): np.asarray(outputs)}
    raise ValueError(f"a TF Serving answer holds 'predictions' or 'outputs'; received keys {sorted(body)}")


def _single(output_names: Sequence[str]) -> str:
    if len(output_names) != 1:
        raise ValueError(f"TF Serving answered one unnamed output, but the signature has outputs "
                         f"{', '.join(output_names) or 'none'}")
    return output_names[0]


def rest_predict(server: str, name: str, examples: Sequence[bytes], signature: str, output_names: Sequence[str],
                 label: str | None = None, version: int | None = None, input_name: str = EXAMPLES_INPUT,
                 timeout: float = 30.0) -> dict[str, np.ndarray]:
    """Sends one REST predict call and returns output name -> values."""
    url = f"{base_url(server)}{model_path(name, label, version)}:predict"
    body = json.dumps(rest_request(examples, signature, input_name)).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    return rest_outputs(_send(request, url, timeout), output_names)


def version_state(server: str, name: str, version: int, timeout: float = 10.0) -> str:
    """The state TF Serving reports for one version (``AVAILABLE``, ``LOADING``, ...; ``UNKNOWN`` if absent)."""
    url = f"{base_url(server)}{model_path(name, version=version)}"
    try:
        body = _send(urllib.request.Request(url, method="GET"), url, timeout)
    except ValueError as error:
        if "answered 404:" in str(error):
            return "UNKNOWN"
        raise
    for entry in body.get("model_version_status", []):
        if str(entry.get("version")) == str(version):
            return str(entry.get("state", "UNKNOWN"))
    return "UNKNOWN"


def _send(request: urllib.request.Request, url: str, timeout: float) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", errors="replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except ValueError:
            pass
        raise ValueError(f"TF Serving at {url} answered {error.code}: {str(detail).strip()[:500]}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ValueError(f"cannot reach TF Serving at {url}: {reason}") from None


def grpc_request(examples: Sequence[bytes], name: str, signature: str, label: str | None = None,
                 version: int | None = None, input_name: str = EXAMPLES_INPUT) -> Any:
    """The ``PredictRequest`` of a gRPC predict call for serialized tf.Examples."""
    predict_pb2 = _serving_api("predict_pb2")
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if label is not None and version is not None:
        raise ValueError(f"ask for a label or a version, not both; received label {label!r} and version {version}")
    if label is not None:
        request.model_spec.version_label = label
    elif version is not None:
        request.model_spec.version.value = int(version)
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(list(examples), dtype=tf.string, shape=[len(examples)]))
    return request


def grpc_outputs(response: Any) -> dict[str, np.ndarray]:
    """Output name -> values from a ``PredictResponse``."""
    import tensorflow as tf

    return {name: tf.make_ndarray(tensor) for name, tensor in response.outputs.items()}


def grpc_predict(server: str, name: str, examples: Sequence[bytes], signature: str, label: str | None = None,
                 version: int | None = None, input_name: str = EXAMPLES_INPUT,
                 timeout: float = 30.0) -> dict[str, np.ndarray]:
    """Sends one gRPC predict call and returns output name -> values."""
    import grpc

    service = _serving_api("prediction_service_pb2_grpc")
    request = grpc_request(examples, name, signature, label, version, input_name)
    address = host_port(server)
    with grpc.insecure_channel(address) as channel:
        try:
            response = service.PredictionServiceStub(channel).Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            raise ValueError(f"TF Serving at {address} (gRPC) answered {error.code().name}: "
                             f"{error.details()}") from None
    return grpc_outputs(response)


def _serving_api(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(f"tensorflow_serving.apis.{module}")
    except ImportError:
        raise ValueError(GRPC_MISSING) from None

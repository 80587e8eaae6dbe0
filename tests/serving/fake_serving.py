"""Loopback stand-ins for TensorFlow Serving, answering with the real SavedModels of a deployment.

No TF Serving binary installs here, so these follow its documented behaviour closely
enough to test our side of each protocol:

- :class:`ServedModels` reads a ``models.config`` with TF Serving's own config proto
  (``tensorflow_serving.config.model_server_config_pb2``), loads every listed version from
  its ``base_path`` and refuses, as the server does on a config reload, a label pointing at
  a version that was not loaded before the reload (the first load waits for every version).
- :class:`RestServer`: ``GET /v1/models/NAME[/versions/N|/labels/L]`` (version status) and
  ``POST ...:predict`` (row format ``instances``, columnar ``inputs``; ``{"b64": ...}`` is a
  binary string), answering ``predictions`` or ``outputs`` as TF Serving shapes them.
- :class:`GrpcServer`: ``PredictionService/Predict`` with TensorProto inputs and outputs.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import text_format


class ServingError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


class ServedModels:
    """The models a TF Serving process would hold for a ``models.config``.

    Args:
        config_path: the ``models.config``.
        mounts: base-path prefix as written in the config -> local folder (``/models`` -> the
            deployment folder), as a volume mount would map it.
    """

    def __init__(self, config_path: str | Path, mounts: dict[str, Path] | None = None):
        self.config_path = Path(config_path)
        self.mounts = dict(mounts or {})
        self.loaded: dict[str, dict[int, object]] = {}
        self.labels: dict[str, dict[str, int]] = {}
        self.reload()

    def reload(self) -> None:
        """Reads the config again, as the server's config poll does."""
        from tensorflow_serving.config import model_server_config_pb2

        config = text_format.Parse(self.config_path.read_text(), model_server_config_pb2.ModelServerConfig())
        first = not self.loaded
        before = {name: set(versions) for name, versions in self.loaded.items()}
        loaded, labels = {}, {}
        for model in config.model_config_list.config:
            if model.model_platform != "tensorflow":
                raise ServingError(400, f"unknown platform {model.model_platform}")
            base = self._local(model.base_path)
            versions = list(model.model_version_policy.specific.versions)
            loaded[model.name] = {v: self.loaded.get(model.name, {}).get(v) or tf.saved_model.load(str(base / str(v)))
                                  for v in versions}
            available = set(versions) if first else before.get(model.name, set())
            for label, version in model.version_labels.items():
                if version not in available:
                    raise ServingError(400, f"Request to assign label to version {version} of model {model.name}, "
                                            "which is not currently available for inference")
            labels[model.name] = dict(model.version_labels)
        self.loaded, self.labels = loaded, labels

    def _local(self, base_path: str) -> Path:
        for prefix, folder in self.mounts.items():
            if base_path == prefix or base_path.startswith(prefix.rstrip("/") + "/"):
                return Path(folder) / base_path[len(prefix):].lstrip("/")
        return Path(base_path)

    def version(self, name: str, label: str | None = None, version: int | None = None) -> int:
        if name not in self.loaded:
            raise ServingError(404, f"Servable not found for request: Latest({name})")
        if label is not None:
            if label not in self.labels[name]:
                raise ServingError(404, f"Unrecognized servable version label: {label}")
            return self.labels[name][label]
        if version is not None:
            if version not in self.loaded[name]:
                raise ServingError(404, f"Servable not found for request: Specific({name}, {version})")
            return version
        return max(self.loaded[name])

    def signature(self, name: str, signature: str, label: str | None = None, version: int | None = None):
        model = self.loaded[name][self.version(name, label, version)]
        if signature not in model.signatures:
            raise ServingError(400, f"Serving signature name: \"{signature}\" not found in signature def")
        return model.signatures[signature]


def call_signature(function, inputs: dict[str, list]) -> dict[str, np.ndarray]:
    """Runs a signature on decoded inputs (name -> list of values), as the server does."""
    tensors = {name: tf.constant(values) for name, values in inputs.items()}
    return {name: value.numpy() for name, value in function(**tensors).items()}


def decode_rest_inputs(body: dict, function) -> tuple[dict[str, list], bool]:
    """The request's inputs decoded as TF Serving's JSON rules do; (inputs, row format)."""
    names = list(function.structured_input_signature[1])
    if "instances" in body:
        columns = {name: [] for name in names}
        for instance in body["instances"]:
            if isinstance(instance, dict) and set(instance) <= set(names) and "b64" not in instance:
                for name, value in instance.items():
                    columns[name].append(_value(value))
            elif len(names) == 1:
                columns[names[0]].append(_value(instance))
            else:
                raise ServingError(400, "instances of a multi-input signature must be objects")
        return columns, True
    if "inputs" in body:
        inputs = body["inputs"]
        if not isinstance(inputs, dict):
            inputs = {names[0]: inputs}
        return {name: [_value(v) for v in values] for name, values in inputs.items()}, False
    raise ServingError(400, "Missing 'instances' or 'inputs' key")


def _value(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    return value


def rest_answer(outputs: dict[str, np.ndarray], row_format: bool) -> dict:
    plain = {name: value.tolist() for name, value in outputs.items()}
    if not row_format:
        return {"outputs": plain if len(plain) > 1 else next(iter(plain.values()))}
    if len(plain) == 1:
        return {"predictions": next(iter(plain.values()))}
    rows = len(next(iter(plain.values())))
    return {"predictions": [{name: values[i] for name, values in plain.items()} for i in range(rows)]}


_ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
                    r"(?P<predict>:predict)?$")


class RestServer:
    """TF Serving's REST API on 127.0.0.1 (a free port), in a thread. Use as a context manager."""

    def __init__(self, models: ServedModels):
        self.models = models
        self.requests: list[dict] = []
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._http.server_address[1]}"

    def __enter__(self) -> "RestServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._http.shutdown()
        self._http.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._answer(lambda route: server.status(route))

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "body": body})
                self._answer(lambda route: server.predict(route, body))

            def _answer(self, work):
                match = _ROUTE.match(self.path)
                try:
                    if match is None:
                        raise ServingError(404, f"Malformed request: {self.path}")
                    code, payload = 200, work(match)
                except ServingError as error:
                    code, payload = error.code, {"error": str(error)}
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def status(self, route) -> dict:
        name = route["name"]
        if route["version"] or route["label"]:
            versions = [self.models.version(name, route["label"], int(route["version"]) if route["version"] else None)]
        else:
            self.models.version(name)
            versions = sorted(self.models.loaded[name], reverse=True)
        return {"model_version_status": [{"version": str(v), "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}} for v in versions]}

    def predict(self, route, body) -> dict:
        version = int(route["version"]) if route["version"] else None
        function = self.models.signature(route["name"], body.get("signature_name", "serving_default"),
                                         route["label"], version)
        inputs, row_format = decode_rest_inputs(body, function)
        return rest_answer(call_signature(function, inputs), row_format)


class GrpcServer:
    """TF Serving's gRPC PredictionService on 127.0.0.1 (a free port). Use as a context manager."""

    def __init__(self, models: ServedModels):
        import grpc
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        self.models = models
        self.requests: list = []
        outer = self

        class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):
                outer.requests.append(request)
                spec = request.model_spec
                label = spec.version_label or None
                version = spec.version.value if spec.HasField("version") else None
                try:
                    function = models.signature(spec.name, spec.signature_name or "serving_default", label, version)
                except ServingError as error:
                    context.abort(grpc.StatusCode.NOT_FOUND if error.code == 404 else grpc.StatusCode.INVALID_ARGUMENT,
                                  str(error))
                inputs = {name: list(tf.make_ndarray(tensor)) for name, tensor in request.inputs.items()}
                response = predict_pb2.PredictResponse()
                for name, value in call_signature(function, inputs).items():
                    response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
                return response

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), self._server)
        self._port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._port}"

    def __enter__(self) -> "GrpcServer":
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop(grace=None)

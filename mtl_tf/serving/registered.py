"""The registered version behind a model reference, and the files serving needs from it.

A version registered by :func:`mtl_tf.tracking.register_export` has its SavedModel as the
run's ``export/`` artifacts (the version's ``source``, also tagged ``export_artifact_uri``).
The run that trained it also logged the recipe (``recipe/recipe.resolved.yaml``) and
dataset.json (``data/dataset.json``; ``data/data/dataset.json`` for a recipe with several
datasets, whose main dataset holds the model's input features). Everything is read through
MLflow's artifacts API, so any artifact store MLflow reaches works (a local folder, a
tracking server proxying artifacts, a bucket).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtl_tf.serving.reference import ModelRef

EXPORT_ARTIFACTS = "export"
RECIPE_ARTIFACT = "recipe/recipe.resolved.yaml"
DATASET_ARTIFACTS = ("data/dataset.json", "data/data/dataset.json")
# What TF Serving reads of an export; model.keras stays in the registry.
SAVED_MODEL_ENTRIES = ("saved_model.pb", "fingerprint.pb", "variables", "assets", "signatures.json")


@dataclass(frozen=True)
class RegisteredVersion:
    """One registered model version.

    Attributes:
        name: the registered model name.
        version: the version number.
        run_id: the run that trained it.
        source: the artifact URI of its SavedModel.
        aliases: every alias of the registered model -> the version it points at.
        tags: the version's tags.
    """

    name: str
    version: int
    run_id: str
    source: str
    aliases: dict[str, int] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def own_aliases(self) -> list[str]:
        """The aliases pointing at this version."""
        return sorted(a for a, v in self.aliases.items() if v == self.version)


def resolve_version(ref: ModelRef, tracking_uri: str | None = None) -> RegisteredVersion:
    """The version ``ref`` names.

    Raises:
        ValueError: no such model, alias or version; the message lists what exists.
    """
    from mtl_tf.tracking._client import make_client
    from mtl_tf.tracking.registry import get_registered_model, model_versions

    client = make_client(tracking_uri)
    model = get_registered_model(client, ref.name)
    aliases = {alias: int(v) for alias, v in (model.aliases or {}).items()}
    versions = model_versions(client, ref.name)
    number = ref.version
    if ref.alias is not None:
        if ref.alias not in aliases:
            known = ", ".join(f"{a} (v{v})" for a, v in sorted(aliases.items())) or "none"
            raise ValueError(f"model '{ref.name}' has no alias '{ref.alias}'; its aliases: {known}; point one at a "
                             f"version with `mtl models promote {ref.name} VERSION --alias {ref.alias}`")
        number = aliases[ref.alias]
    found = next((v for v in versions if int(v.version) == number), None)
    if found is None:
        existing = ", ".join(str(v.version) for v in versions) or "none"
        raise ValueError(f"model '{ref.name}' has no version {number}; existing versions: {existing}")
    tags = dict(found.tags or {})
    source = tags.get("export_artifact_uri") or found.source
    if not source:
        raise ValueError(f"version {number} of '{ref.name}' names no export (no source, no export_artifact_uri tag); "
                         "register exports with `mtl run`")
    return RegisteredVersion(name=ref.name, version=int(number), run_id=found.run_id, source=source,
                             aliases=aliases, tags=tags)


def download_export(version: RegisteredVersion, destination: str | Path, tracking_uri: str | None = None) -> Path:
    """Downloads the version's SavedModel (and ``signatures.json``) into ``destination``.

    Returns:
        ``destination``, holding ``saved_model.pb`` and ``variables/``.

    Raises:
        ValueError: the artifacts hold no ``saved_model.pb``.
    """
    import mlflow.artifacts

    from mtl_tf.tracking.uri import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    for entry in _export_entries(version, uri):
        mlflow.artifacts.download_artifacts(artifact_uri=f"{version.source.rstrip('/')}/{entry}",
                                            dst_path=str(destination), tracking_uri=uri)
    if not (destination / "saved_model.pb").is_file():
        raise ValueError(f"version {version.version} of '{version.name}' has no saved_model.pb under "
                         f"{version.source}; it was not registered from an mtl export")
    return destination


def _export_entries(version: RegisteredVersion, uri: str) -> list[str]:
    import mlflow.artifacts

    listed = mlflow.artifacts.list_artifacts(artifact_uri=version.source, tracking_uri=uri)
    names = {Path(item.path).name for item in listed}
    return [name for name in SAVED_MODEL_ENTRIES if name in names]


def download_run_file(version: RegisteredVersion, candidates: tuple[str, ...], destination: str | Path,
                      tracking_uri: str | None = None) -> Path:
    """Downloads the first of ``candidates`` (artifact paths of the version's run) that exists.

    Raises:
        ValueError: none of them is among the run's artifacts.
    """
    from mlflow.exceptions import MlflowException

    from mtl_tf.tracking._client import make_client

    client = make_client(tracking_uri)
    for candidate in candidates:
        folder = str(Path(candidate).parent)
        present = {item.path for item in client.list_artifacts(version.run_id, folder)}
        if candidate in present:
            try:
                return Path(client.download_artifacts(version.run_id, candidate, str(destination)))
            except (MlflowException, OSError) as error:
                raise ValueError(f"cannot download {candidate} of run {version.run_id}: {error}") from None
    raise ValueError(f"run {version.run_id} of '{version.name}' v{version.version} has none of "
                     f"{', '.join(candidates)}; it was not logged by `mtl run`")


@dataclass(frozen=True)
class ServingFiles:
    """What converting rows and naming outputs needs: the recipe, dataset.json, signatures.json."""

    recipe: Any
    spec: Any
    signatures: dict[str, Any]

    def signature(self, signature: str) -> dict[str, Any]:
        """``{"inputs": ..., "outputs": ...}`` of ``signature``, names as the SavedModel gives them."""
        from mtl_tf.errors import did_you_mean

        known = self.signatures.get("signatures", {})
        if signature not in known:
            raise ValueError(f"the export has no signature '{signature}'{did_you_mean(signature, known)}; "
                             f"signatures: {', '.join(known)}")
        return known[signature]


def serving_files(version: RegisteredVersion, destination: str | Path,
                  tracking_uri: str | None = None) -> ServingFiles:
    """Downloads and reads the recipe, dataset.json and signatures.json of ``version``."""
    import json

    from mtl_tf.data.spec import DatasetSpec
    from mtl_tf.recipe import load_recipe

    destination = Path(destination)
    recipe_path = download_run_file(version, (RECIPE_ARTIFACT,), destination / "recipe", tracking_uri)
    spec_path = download_run_file(version, DATASET_ARTIFACTS, destination / "dataset", tracking_uri)
    signatures_path = _download_signatures(version, destination / "signatures", tracking_uri)
    return ServingFiles(recipe=load_recipe(recipe_path, check=False), spec=DatasetSpec.read(spec_path),
                        signatures=json.loads(Path(signatures_path).read_text()))


def _download_signatures(version: RegisteredVersion, destination: Path, tracking_uri: str | None) -> Path:
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from mtl_tf.tracking.uri import resolve_tracking_uri

    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{version.source.rstrip('/')}/signatures.json",
                                                        dst_path=str(destination),
                                                        tracking_uri=resolve_tracking_uri(tracking_uri)))
    except (MlflowException, OSError) as error:
        raise ValueError(f"version {version.version} of '{version.name}' has no signatures.json beside its "
                         f"SavedModel ({version.source}): {error}") from None

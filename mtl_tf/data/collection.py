"""Several datasets behind one recipe: the main ``data`` and the optional ``datasets[]``.

Each dataset is preprocessed on its own, by the same Beam pipeline, as a one-dataset
sub-recipe (:func:`dataset_recipe`: its source, split, output folder and shards, the shared
features, only its tasks), so it gets its own TFRecords, ``dataset.json`` and rejects.
A :class:`DatasetCollection` holds the resulting specs by dataset name.

The model is built from :attr:`DatasetCollection.combined`: the main dataset's
``dataset.json`` (its features, their statistics and its splits) with every dataset's
tasks. The shared features are normalised and looked up with the main dataset's train
statistics only: numeric moments could be pooled exactly, but a vocabulary kept as each
dataset's top-k values cannot be merged exactly, and mixing the two would leave the
features with statistics of different populations. The main dataset is the one served in
production, so its statistics are the ones a served example meets. Label counts and
statistics stay each task's own (a task's labels come from one dataset): a regression task
standardises with its own dataset's train split.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from mtl_tf.data.spec import DatasetSpec
from mtl_tf.errors import did_you_mean
from mtl_tf.recipe.schema import MAIN_DATASET


class DatasetCollection:
    """Dataset name -> :class:`DatasetSpec`, and which dataset holds each task's labels.

    Args:
        specs: dataset name -> its spec; the first entry is the main dataset (the one whose
            features and statistics the model uses).
        owners: task name -> dataset name; default from the specs' tasks (a task listed by
            two datasets is then an error).

    Example:
        >>> collection = DatasetCollection.read(recipe)
        >>> model = build_model(recipe, collection.combined, build_tasks(recipe.tasks, collection.combined))
    """

    def __init__(self, specs: Mapping[str, DatasetSpec], owners: Mapping[str, str] | None = None):
        if not specs:
            raise ValueError("a DatasetCollection needs at least one dataset; received none")
        self.specs = dict(specs)
        self.owners = dict(owners) if owners is not None else _owners_from_specs(self.specs)
        self._check_owners()
        self._check_features()

    @classmethod
    def read(cls, recipe: Any) -> "DatasetCollection":
        """Reads every dataset.json of a recipe from its output folders.

        Raises:
            FileNotFoundError: a dataset has not been preprocessed.
            ValueError: a dataset.json lacks a task of the recipe (written by an older recipe).
        """
        specs = {name: DatasetSpec.read(output_dir(recipe, name)) for name in recipe.dataset_names}
        owners = {task.name: task.dataset_name for task in recipe.tasks}
        return cls(specs, owners)

    @property
    def names(self) -> list[str]:
        """The dataset names, the main one first."""
        return list(self.specs)

    @property
    def main(self) -> DatasetSpec:
        """The main dataset's spec."""
        return self.specs[self.names[0]]

    def spec(self, name: str) -> DatasetSpec:
        """One dataset's spec."""
        if name not in self.specs:
            raise KeyError(f"no dataset '{name}'{did_you_mean(name, self.names)}; datasets: {', '.join(self.names)}")
        return self.specs[name]

    def task_names(self, name: str) -> list[str]:
        """The tasks whose labels dataset ``name`` holds."""
        self.spec(name)
        return [task for task, owner in self.owners.items() if owner == name]

    def train_rows(self) -> dict[str, int]:
        """Dataset name -> examples in its train split (dataset.json)."""
        return {name: _split_rows(spec, "train") for name, spec in self.specs.items()}

    @property
    def combined(self) -> DatasetSpec:
        """The main dataset's spec with every dataset's tasks: what the model is built from.

        Features, statistics and splits are the main dataset's (see the module docstring);
        each task keeps the label counts and statistics of its own dataset.
        """
        tasks = [self.spec(owner).task(task) for task, owner in self.owners.items()]
        combined = self.main.model_copy(update={"tasks": tasks})
        combined.root = self.main.root
        return combined

    def summary(self) -> str:
        """One line per dataset: its tasks and examples per split."""
        lines = []
        for name, spec in self.specs.items():
            splits = ", ".join(f"{split} {info.num_examples}" for split, info in spec.splits.items())
            lines.append(f"dataset {name}: tasks {', '.join(self.task_names(name))}; {splits}")
        return "\n".join(lines)

    def _check_owners(self) -> None:
        for task, owner in self.owners.items():
            spec = self.spec(owner)
            known = [t.name for t in spec.tasks]
            if task not in known:
                raise ValueError(f"dataset '{owner}' (dataset.json in {spec.root}) has no task '{task}'; its tasks: "
                                 f"{', '.join(known)}; rerun `mtl data preprocess RECIPE` after changing the tasks")

    def _check_features(self) -> None:
        """Every dataset must parse the main dataset's features with the same dtypes."""
        wanted = {f.name: f.dtype for f in self.main.features}
        for name, spec in list(self.specs.items())[1:]:
            have = {f.name: f.dtype for f in spec.features}
            if have != wanted:
                raise ValueError(f"dataset '{name}' has features {have} but the main dataset has {wanted}; "
                                 "every dataset must hold the main dataset's features; rerun `mtl data preprocess`")


def _owners_from_specs(specs: Mapping[str, DatasetSpec]) -> dict[str, str]:
    owners: dict[str, str] = {}
    for name, spec in specs.items():
        for task in spec.tasks:
            if task.name in owners:
                raise ValueError(f"task '{task.name}' is in datasets '{owners[task.name]}' and '{name}'; "
                                 "a task's labels come from one dataset; pass owners to choose")
            owners[task.name] = name
    return owners


def _split_rows(spec: DatasetSpec, split: str) -> int:
    return spec.splits[split].num_examples if split in spec.splits else 0


def output_dir(recipe: Any, name: str) -> str:
    """The output folder of dataset ``name`` of a recipe."""
    if name == MAIN_DATASET:
        return recipe.data.output_dir
    for dataset in recipe.datasets or []:
        if dataset.name == name:
            return dataset.output_dir
    raise KeyError(f"no dataset '{name}'{did_you_mean(name, recipe.dataset_names)}; datasets: "
                   f"{', '.join(recipe.dataset_names)}")


def dataset_recipe_dict(recipe: Any, name: str) -> dict[str, Any]:
    """The recipe reduced to one dataset, as a plain mapping (see :func:`dataset_recipe`)."""
    raw = recipe.model_dump(mode="json")
    raw.pop("datasets", None)
    tasks = [entry for entry in raw["tasks"] if entry.get("dataset", MAIN_DATASET) == name]
    if not tasks:
        raise ValueError(f"dataset '{name}'{did_you_mean(name, recipe.dataset_names)} holds no task of recipe "
                         f"'{recipe.name}'; datasets: {', '.join(recipe.dataset_names)}")
    raw["tasks"] = [{k: v for k, v in entry.items() if k != "dataset"} for entry in tasks]
    if name != MAIN_DATASET:
        extra = next(d for d in recipe.datasets if d.name == name).model_dump(mode="json")
        raw["name"] = f"{recipe.name}.{name}"
        raw["data"].update({key: extra[key] for key in ("source", "split", "output_dir", "shards")})
    return raw


def dataset_recipe(recipe: Any, name: str) -> Any:
    """The one-dataset recipe that preprocesses dataset ``name`` of ``recipe``.

    Its ``data`` is the named dataset's source, split, output folder and shards with the
    shared features; its tasks are the ones whose ``dataset`` is ``name``. For the main
    dataset the name stays the recipe's; another dataset's is ``<recipe>.<dataset>``.
    """
    from mtl_tf.recipe.loader import parse_recipe

    return parse_recipe(dataset_recipe_dict(recipe, name), check=False)


def preprocess_datasets(recipe: Any, beam_args: Sequence[str] = (), skip: bool = False,
                        echo: Callable[[str], Any] = print) -> DatasetCollection:
    """Runs the Beam pipeline once per dataset of a recipe (or reuses their output).

    Args:
        recipe: the recipe (with or without ``datasets``).
        beam_args: Beam pipeline options, the same for every dataset.
        skip: read the dataset.json files already written instead of running Beam.
        echo: where the per-dataset summaries go (rows in = written + rejected).

    Returns:
        The :class:`DatasetCollection`.

    Raises:
        ValueError: a dataset's inputs are unusable, or a task has no labelled row in a split.
    """
    if skip:
        collection = DatasetCollection.read(recipe)
        for name in collection.names:
            echo(f"dataset {name}: reusing {output_dir(recipe, name)}/dataset.json")
    else:
        from pipelines import run as run_pipeline

        specs = {}
        for name in recipe.dataset_names:
            sub = dataset_recipe(recipe, name)
            echo(f"dataset {name}: {', '.join(sub.task_names)} from {', '.join(sub.data.source.patterns)}")
            result = run_pipeline(sub, list(beam_args))
            echo(result.summary())
            specs[name] = result.spec
        collection = DatasetCollection(specs, {task.name: task.dataset_name for task in recipe.tasks})
    problems = [f"dataset {name}: {problem}" for name, spec in collection.specs.items()
                for problem in spec.label_problems()]
    if problems:
        raise ValueError("; ".join(problems))
    for name, spec in collection.specs.items():
        for warning in spec.label_warnings():
            echo(f"warning: dataset {name}: {warning}")
    return collection

"""Medical image sources: 16-bit scans through an intensity window, and splits by patient
(a key column, a key taken from a name by a pattern, npz key arrays, npz prefixes read
together), with the key stored in every example."""

import io

import numpy as np
import pytest
from PIL import Image

from mtl_tf.recipe.loader import parse_recipe
from pipelines.images.pipeline import run
from pipelines.images.sources import image_source
from tests.pipelines.images_tiny import decode_png, read_examples, write_jsonl

H, W = 12, 16


def _window(values, low, high):
    """The windowing written out pixel by pixel: low..high -> 0..255, clipped, rounded half up."""
    out = np.zeros(values.shape, np.uint8)
    for index, value in np.ndenumerate(values.astype(float)):
        level = (value - low) / (high - low) * 255
        out[index] = int(np.floor(min(max(level, 0), 255) + 0.5))
    return out


def _recipe(source, out, tasks, split=None, **image):
    image.setdefault("column", "image")
    raw = {"name": "scans",
           "data": {"source": source, "features": [{"name": "scan", "kind": "image", "height": H, "width": W,
                                                    "channels": 1, **image}],
                    "output_dir": str(out), "shards": 2},
           "tasks": tasks}
    if split is not None:
        raw["data"]["split"] = split
    return parse_recipe(raw, check=False)


FINDING = [{"name": "finding", "type": "binary", "label": "finding"}]


def _save16(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint16)).save(path)
    return path.name


@pytest.fixture(scope="module")
def scans16(tmp_path_factory):
    """A manifest of 16-bit grayscale PNGs (a 12-bit range) and one 8-bit PNG, with patient names."""
    root = tmp_path_factory.mktemp("scans16")
    rng = np.random.default_rng(4)
    rows, arrays = [], {}
    for i in range(12):
        patient = f"PAT{i // 3:02d}"
        name = f"{patient}_{i % 3:03d}.png"
        array = rng.integers(200, 4000, (H, W))
        arrays[name] = array
        rows.append({"image": f"images/{_save16(root / 'images' / name, array)}", "name": name,
                     "finding": int(i % 2)})
    eight = rng.integers(0, 256, (H, W), dtype=np.uint8)
    Image.fromarray(eight).save(root / "images" / "PAT09_000.png")
    arrays["PAT09_000.png"] = eight
    rows.append({"image": "images/PAT09_000.png", "name": "PAT09_000.png", "finding": 1})
    rows.append({"image": "images/PAT00_000.png", "name": "unnamed.png", "finding": 0})  # no patient prefix
    return write_jsonl(root / "manifest.jsonl", rows), arrays


def test_sixteen_bit_scans_are_windowed_to_the_stored_8_bits(scans16, tmp_path):
    manifest, arrays = scans16
    recipe = _recipe({"kind": "manifest", "path": manifest}, tmp_path / "out", FINDING,
                     split={"key": "name", "key_pattern": "^([^_]+)_", "train": 0.4, "validation": 0.3,
                            "test": 0.3}, bit_depth=16, window={"center": 2000, "width": 3000})
    result = run(recipe)
    assert result.rejects_by_reason == {"split_key_unmatched": 1}
    image = result.spec.feature("scan").image
    assert image.bit_depth == 16 and (image.window.center, image.window.width) == (2000, 3000)
    examples = read_examples(result.path.parent)
    assert len(examples) == 13
    for example in examples:
        key = example["__key__"][0].decode()
        stored = decode_png(example["scan"][0])
        # find the source by its pixels: the window maps 500..3500 to 0..255; 8-bit sources stay as they are
        matches = [name for name, array in arrays.items() if name.startswith(key) and (
            (_window(array, 500, 3500) == stored).all() if array.dtype != np.uint8 else (array == stored).all())]
        assert matches, key


def test_without_bit_depth_16_the_same_scans_are_rejected_as_not_8_bit(scans16, tmp_path):
    manifest, _ = scans16
    with pytest.raises(ValueError, match="13 of 14 rows were rejected: not_8_bit 13") as err:
        run(_recipe({"kind": "manifest", "path": manifest}, tmp_path / "out", FINDING))
    assert "bit_depth: 16" in (tmp_path / "out" / "rejects").joinpath(
        next(p.name for p in (tmp_path / "out" / "rejects").iterdir())).read_text()
    assert "Traceback" not in str(err.value)


def test_a_window_needs_bit_depth_16():
    with pytest.raises(ValueError, match="needs bit_depth: 16"):
        _recipe({"kind": "manifest", "path": "m.jsonl"}, "out", FINDING, window="per_image")


def test_no_patient_is_in_two_splits_and_every_example_carries_its_patient(scans16, tmp_path):
    manifest, _ = scans16
    recipe = _recipe({"kind": "manifest", "path": manifest}, tmp_path / "out", FINDING,
                     split={"key": "name", "key_pattern": "^([^_]+)_", "train": 0.4, "validation": 0.3, "test": 0.3},
                     bit_depth=16, window="per_image")
    result = run(recipe)
    assert result.spec.split_key == "name" and result.spec.split_key_pattern == "^([^_]+)_"
    assert result.spec.example_key == "__key__"
    splits_of: dict[str, set[str]] = {}
    for example in read_examples(result.path.parent):
        splits_of.setdefault(example["__key__"][0].decode(), set()).add(example["_split"])
    assert set(splits_of) == {f"PAT{i:02d}" for i in range(4)} | {"PAT09"}
    assert all(len(splits) == 1 for splits in splits_of.values())
    assert len(set().union(*splits_of.values())) >= 2


def _patients_npz(path, rng, prefixes=("train", "val", "test"), leak=False):
    """Slices of 9 patients (4 slices each) spread over the prefixes; uint16 scans."""
    arrays, patient = {}, 0
    for prefix in prefixes:
        names = [f"TCGA_{p:02d}" for p in range(patient, patient + 3) for _ in range(4)]
        patient += 3
        if leak and prefix != prefixes[0]:
            names[0] = "TCGA_00"  # a slice of a training patient in another split
        arrays[f"{prefix}_images"] = rng.integers(0, 60000, (len(names), H, W)).astype(np.uint16)
        arrays[f"{prefix}_patient"] = np.array(names)
        arrays[f"{prefix}_finding"] = rng.integers(0, 2, len(names)).astype(np.uint8)
    np.savez(path, **arrays)
    return arrays


NPZ_TASKS = [{"name": "finding", "type": "binary", "label": "finding"}]


def test_npz_prefixes_are_read_together_and_split_by_patient(tmp_path):
    arrays = _patients_npz(tmp_path / "mri.npz", np.random.default_rng(1))
    source = {"kind": "npz", "path": str(tmp_path / "mri.npz"), "prefixes": ["train", "val", "test"]}
    recipe = _recipe(source, tmp_path / "out", NPZ_TASKS, split={"key": "patient", "train": 0.5,
                                                                  "validation": 0.25, "test": 0.25},
                     column="images", bit_depth=16, window="per_image")
    result = run(recipe)
    assert result.rows_in == 36 and sum(result.rows_written.values()) == 36
    examples = read_examples(result.path.parent)
    splits_of: dict[str, set[str]] = {}
    for example in examples:
        splits_of.setdefault(example["__key__"][0].decode(), set()).add(example["_split"])
    assert len(splits_of) == 9 and all(len(s) == 1 for s in splits_of.values())
    # per_image: each stored slice spans 0..255 as its own min..max does
    stored = {decode_png(e["scan"][0]).tobytes() for e in examples}
    expected = {_window(image, image.min(), image.max()).tobytes() for prefix in ("train", "val", "test")
                for image in arrays[f"{prefix}_images"]}
    assert stored == expected


def test_an_npz_file_whose_splits_share_a_patient_is_refused_before_beam_starts(tmp_path):
    _patients_npz(tmp_path / "leak.npz", np.random.default_rng(2), leak=True)
    source = {"kind": "npz", "path": str(tmp_path / "leak.npz"),
              "splits": {"train": "train", "validation": "val", "test": "test"}}
    recipe = _recipe(source, tmp_path / "out", NPZ_TASKS, split={"key": "patient"}, column="images", bit_depth=16)
    with pytest.raises(ValueError) as err:
        image_source(recipe)
    message = str(err.value)
    assert "1 of 9 'patient' keys are in two of the file's splits" in message and "TCGA_00" in message
    assert "data.source.prefixes" in message


def test_an_npz_file_split_by_patient_keeps_its_splits_and_stores_the_patients(tmp_path):
    _patients_npz(tmp_path / "mri.npz", np.random.default_rng(3))
    source = {"kind": "npz", "path": str(tmp_path / "mri.npz"),
              "splits": {"train": "train", "validation": "val", "test": "test"}}
    result = run(_recipe(source, tmp_path / "out", NPZ_TASKS, split={"key": "patient"}, column="images",
                         bit_depth=16))
    by_split = {}
    for example in read_examples(result.path.parent):
        by_split.setdefault(example["_split"], set()).add(example["__key__"][0].decode())
    assert by_split == {"train": {"TCGA_00", "TCGA_01", "TCGA_02"}, "validation": {"TCGA_03", "TCGA_04", "TCGA_05"},
                        "test": {"TCGA_06", "TCGA_07", "TCGA_08"}}
    assert result.spec.split_key == "patient"


def test_splits_and_prefixes_together_are_refused():
    with pytest.raises(ValueError, match="either 'splits'"):
        _recipe({"kind": "npz", "path": "x.npz", "splits": {"train": "train"}, "prefixes": ["train"]}, "out",
                NPZ_TASKS)
    with pytest.raises(ValueError, match="key_pattern .* needs 'key'"):
        _recipe({"kind": "npz", "path": "x.npz"}, "out", NPZ_TASKS, split={"key_pattern": "^(.+)_"})


def test_a_csv_split_key_pattern_keeps_a_patients_rows_together(tmp_path):
    from pipelines.csv_to_tfrecords import run as run_csv

    rng = np.random.default_rng(0)
    lines = ["image_id,patient_no,finding"]
    for i in range(60):
        lines.append(f"P{i // 4:03d}_{i % 4},{i // 4},{int(rng.integers(0, 2))}")
    lines.append("nopatient,99,1")
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    raw = {"name": "rows", "data": {"source": {"path": str(tmp_path / "rows.csv")},
                                    "features": [{"name": "patient_no", "kind": "numeric"}],
                                    "split": {"key": "image_id", "key_pattern": "^(P[0-9]+)_", "train": 0.5,
                                              "validation": 0.25, "test": 0.25},
                                    "output_dir": str(tmp_path / "out"), "shards": 1},
           "tasks": [{"name": "finding", "type": "binary", "label": "finding"}]}
    result = run_csv(parse_recipe(raw, check=False))
    assert result.rejects_by_reason == {"split_key_unmatched": 1}
    splits_of: dict[float, set[str]] = {}
    for example in read_examples(result.path.parent):
        splits_of.setdefault(example["patient_no"][0], set()).add(example["_split"])
    assert len(splits_of) == 15 and all(len(s) == 1 for s in splits_of.values())
    assert len(set().union(*splits_of.values())) >= 2

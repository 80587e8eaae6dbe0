"""Synthetic chest radiographs: anatomy where it belongs, findings that agree with the masks,
several scans per patient, 16-bit detector values, and the `mtl data synth` command."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mtl_tf.data.synth import synthesize_images
from mtl_tf.data.synth.medical_imaging import FINDINGS, LESIONS, ORGANS

ROWS = 160
LEFT_LUNG, RIGHT_LUNG, HEART = ORGANS.index("left_lung"), ORGANS.index("right_lung"), ORGANS.index("heart")
NODULE, EFFUSION = LESIONS.index("nodule"), LESIONS.index("effusion")


def _load(folder: Path):
    scans = []
    for line in (folder / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        scans.append({"row": row, "image": np.asarray(Image.open(folder / row["image"])),
                      "organs": np.asarray(Image.open(folder / row["organs"])),
                      "lesions": np.asarray(Image.open(folder / row["lesions"]))})
    return scans


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chest")
    synthesize_images("medical_imaging", ROWS, folder, seed=5)
    return _load(folder)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_same_seed_writes_the_same_bytes_and_another_seed_others(tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        synthesize_images("medical_imaging", 4, tmp_path / name, seed=seed, height=32, width=48)
    first = _files(tmp_path / "a")
    assert len(first) == 13 and first == _files(tmp_path / "b")
    assert first["manifest.jsonl"] != _files(tmp_path / "c")["manifest.jsonl"]
    image = next(p for p in (tmp_path / "a" / "images").iterdir())
    assert np.asarray(Image.open(image)).shape == (32, 48)


def test_organs_sit_where_anatomy_puts_them(scans):
    for scan in scans:
        organs, image = scan["organs"], scan["image"].astype(float)
        assert scan["image"].shape == organs.shape == scan["lesions"].shape == (64, 64)
        assert set(np.unique(organs)) == {0, LEFT_LUNG, RIGHT_LUNG, HEART}
        columns = np.arange(64)[None, :].repeat(64, 0)
        # radiological convention: the patient's right lung on the image's left, the heart mostly on the
        # patient's left of the midline (half-way between the lungs' inner edges)
        assert columns[organs == RIGHT_LUNG].mean() < 30 < 34 < columns[organs == LEFT_LUNG].mean()
        midline = (columns[organs == RIGHT_LUNG].max() + columns[organs == LEFT_LUNG].min()) / 2
        assert columns[organs == HEART].mean() > midline + 1
        # the lungs are the largest organs, air-filled (darker than the heart), in the upper two thirds
        lungs = np.isin(organs, (LEFT_LUNG, RIGHT_LUNG))
        assert lungs.sum() > 1.5 * (organs == HEART).sum()
        clear = lungs & (scan["lesions"] == 0)
        assert image[clear].mean() + 20 < image[organs == HEART].mean()
        rows = np.arange(64)[:, None].repeat(64, 1)
        assert rows[lungs].mean() < rows[organs == HEART].mean() < 56


def test_lesions_lie_inside_the_lungs_where_they_occur(scans):
    seen = {NODULE: 0, EFFUSION: 0}
    for scan in scans:
        organs, lesions = scan["organs"], scan["lesions"]
        lungs = np.isin(organs, (LEFT_LUNG, RIGHT_LUNG))
        assert lungs[lesions > 0].all()
        for kind in (NODULE, EFFUSION):
            seen[kind] += int((lesions == kind).any())
        effusion = lesions == EFFUSION
        if effusion.sum() >= 3:
            rows = np.arange(64)[:, None].repeat(64, 1)
            side = np.bincount(organs[effusion]).argmax()
            lung_rows = rows[organs == side]
            # fluid settles at the base: mostly below the lung's middle, down to its lowest row
            assert rows[effusion].mean() > np.percentile(lung_rows, 65) and rows[effusion].max() == lung_rows.max()
            assert set(np.unique(organs[effusion])) == {side}  # one side
        nodule = lesions == NODULE
        if nodule.any():
            image = scan["image"].astype(float)
            ring = lungs & ~nodule & (lesions == 0)
            assert image[nodule].max() > np.percentile(image[ring], 95)  # a bright blob in dark lung
            assert nodule.sum() <= 60  # small
    assert seen[NODULE] > 0 and seen[EFFUSION] > 0


def _ctr(organs: np.ndarray) -> float:
    lung_columns = [c for c in range(organs.shape[1]) if np.isin(organs[:, c], (LEFT_LUNG, RIGHT_LUNG)).any()]
    heart_columns = [c for c in range(organs.shape[1]) if (organs[:, c] == HEART).any()]
    return (max(heart_columns) - min(heart_columns) + 1) / (max(lung_columns) - min(lung_columns) + 1)


def test_findings_are_what_the_masks_show_and_some_are_rare(scans):
    counts = np.zeros(len(FINDINGS))
    for scan in scans:
        row, lesions = scan["row"], scan["lesions"]
        expected = {"nodule": int((lesions == NODULE).any()), "effusion": int((lesions == EFFUSION).sum() >= 3),
                    "cardiomegaly": int(_ctr(scan["organs"]) > 0.5)}
        assert row["findings"] == [expected[f] for f in FINDINGS]
        assert all(row[f] == expected[f] for f in FINDINGS)
        assert row["ctr"] == pytest.approx(_ctr(scan["organs"]), abs=1e-4)
        counts += row["findings"]
    share = counts / len(scans)
    assert (share > 0).all() and (share < 0.35).all()
    assert share.min() < 0.15  # a rare finding


def test_patients_have_several_scans_named_after_them(scans):
    by_patient: dict[str, list[dict]] = {}
    for scan in scans:
        row = scan["row"]
        assert row["name"] == f"{row['patient_id']}_{row['scan']:03d}.png" == Path(row["image"]).name
        by_patient.setdefault(row["patient_id"], []).append(row)
    assert len(by_patient) < len(scans) / 1.5
    assert max(len(rows) for rows in by_patient.values()) > 1
    for rows in by_patient.values():
        # an enlarged heart is the patient's, on every scan
        assert len({r["cardiomegaly"] for r in rows}) == 1
    assert len({scan["row"]["scanner"] for scan in scans}) == 3


def test_sixteen_bit_scans_hold_detector_values_of_the_same_picture(tmp_path):
    synthesize_images("medical_imaging", 6, tmp_path / "eight", seed=3)
    synthesize_images("medical_imaging", 6, tmp_path / "sixteen", seed=3, bit_depth=16)
    eight, sixteen = _load(tmp_path / "eight"), _load(tmp_path / "sixteen")
    for a, b in zip(eight, sixteen):
        assert b["image"].dtype == np.uint16 and b["image"].max() <= 4095 and b["image"].max() > 1000
        assert a["row"]["findings"] == b["row"]["findings"] and (a["organs"] == b["organs"]).all()
        assert np.corrcoef(a["image"].ravel(), b["image"].ravel())[0, 1] > 0.999


def test_corrupt_items_are_marked(tmp_path):
    synthesize_images("medical_imaging", 20, tmp_path, seed=2, corrupt=0.2)
    rows = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert sum(r["corruption"] is not None for r in rows) == 4
    missing = [r for r in rows if r["corruption"] == "missing_image"]
    assert missing and not (tmp_path / missing[0]["image"]).exists()


def test_the_command_writes_scans_and_refuses_bit_depth_elsewhere(tmp_path):
    from mtl_tf.cli.main import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["data", "synth", "medical_imaging", "--rows", "3", "--out", str(tmp_path / "m"),
                                 "--bit-depth", "16"])
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "m" / "manifest.jsonl").read_text().splitlines()) == 3
    result = runner.invoke(cli, ["data", "synth", "driving_perception", "--rows", "3", "--out",
                                 str(tmp_path / "d"), "--bit-depth", "16"])
    assert result.exit_code != 0 and "8-bit images only" in result.output and "Traceback" not in result.output

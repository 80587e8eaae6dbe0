"""The image recipes end to end as a user runs them: `mtl run` (Beam preprocessing, one epoch of
training, evaluation, export, skew check, registration), then the registered version, downloaded
through MLflow (`models:/NAME/VERSION`), answers `serving_default` with a tf.Example carrying one
PNG: the first image of the recipe's npz file, or of the synthetic scenes made here.

    python bench/recipes_end_to_end.py /tmp/e2e camvid pennfudan chestxray14_sample isic2017 lgg_mri
    python bench/recipes_end_to_end.py /tmp/e2e driving_perception medical_imaging

Run it from the repository root (the real-data recipes read ../shared/data). Everything goes under
OUT (datasets, runs, `OUT/mlflow.db`); a recipe whose export is already there is not run again.
It prints each recipe's run summary and the served outputs' shapes and dtypes.
"""
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MTL = str(Path(sys.executable).with_name("mtl"))
NPZ = {
    "camvid": ("../shared/data/camvid/camvid_120x160.npz", "image"),
    "pennfudan": ("../shared/data/pennfudan_ped/pennfudan_192x256.npz", "image"),
    "isic2017": ("../shared/data/isic2017_lesion/isic2017_128px.npz", "dermoscopy"),
    "lgg_mri": ("../shared/data/lgg_mri_flair_seg/lgg_flair_128px.npz", "flair"),
    "chestxray14_sample": ("../shared/data/nih_chestxray14_sample/nih_cxr14_sample1000_64px.npz", "xray"),
}
SYNTH = {"driving_perception": ("image", 160), "medical_imaging": ("scan", 90)}


def png_of(name, out):
    from PIL import Image

    if name in SYNTH:
        raw = out / name / "raw"
        row = json.loads((raw / "manifest.jsonl").read_text().splitlines()[0])
        return SYNTH[name][0], (raw / row["image"]).read_bytes()
    path, feature = NPZ[name]
    data = np.load(path, allow_pickle=False)
    key = next(k for k in data.files if "image" in k)
    image = np.asarray(data[key][0])
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return feature, buffer.getvalue()


def main(out, names):
    import mlflow
    import tensorflow as tf

    out = Path(out)
    uri = f"sqlite:///{out}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for name in names:
        start = time.time()
        sets = ["training.epochs=1", f"output_dir={out}/{name}", f"data.output_dir={out}/{name}/dataset"]
        if name in SYNTH:
            raw = out / name / "raw"
            if not raw.exists():
                subprocess.run([MTL, "data", "synth", name, "--rows", str(SYNTH[name][1]), "--out", str(raw)], check=True)
            sets.append(f"data.source.path={raw}/manifest.jsonl")
        command = [MTL, "run", f"recipes/{name}.yaml", "--tracking-uri", uri]
        for s in sets:
            command += ["--set", s]
        if (out / name / "export").exists():
            done = subprocess.CompletedProcess(command, 0, "(ran before)", "")
        else:
            done = subprocess.run(command, capture_output=True, text=True)
        tail = "\n".join(done.stdout.splitlines()[-6:])
        print(f"== {name}: rc={done.returncode} in {time.time() - start:.0f}s\n{tail}\n{done.stderr[-1500:] if done.returncode else ''}")
        if done.returncode:
            continue
        client = mlflow.MlflowClient(uri)
        model = name
        versions = client.search_model_versions(f"name='{model}'")
        version = max(int(v.version) for v in versions)
        local = mlflow.artifacts.download_artifacts(f"models:/{model}/{version}", dst_path=str(out / f"{name}_dl"))
        saved = next(p.parent for p in Path(local).rglob("saved_model.pb"))
        feature, png = png_of(name, out)
        example = tf.train.Example(features=tf.train.Features(feature={
            feature: tf.train.Feature(bytes_list=tf.train.BytesList(value=[png]))})).SerializeToString()
        answer = tf.saved_model.load(str(saved)).signatures["serving_default"](examples=tf.constant([example]))
        shapes = {k: (tuple(v.shape), str(v.dtype.name)) for k, v in answer.items()}
        finite = all(np.isfinite(v.numpy()).all() for v in answer.values() if v.dtype.is_floating)
        print(f"   registered {model} v{version}; serving_default on a PNG: {shapes}; finite={finite}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])

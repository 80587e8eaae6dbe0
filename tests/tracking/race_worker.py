"""One side of a promotion race (run as a script by test_tracking_server.py).

Usage: python race_worker.py TRACKING_URI MODEL ME FOLDER V1,V2,...
Round r: read the alias's holder, wait at a barrier for the other worker, promote version
V_r to 'champion' expecting that holder, write the outcome to FOLDER/result-<r>-<ME>.json,
and wait until the other worker has written its own before the next round.
"""

import json
import sys
import time
from pathlib import Path


def wait_for(paths, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g}s for {[str(p) for p in paths]}")
        time.sleep(0.005)


def main(uri, model, me, folder, versions):
    from mlflow import MlflowClient

    from mtl_tf.tracking.promotion import PromotionConflict, promote

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    folder, other = Path(folder), "b" if me == "a" else "a"
    for round_, version in enumerate(int(v) for v in versions.split(",")):
        held = int(client.get_model_version_by_alias(model, "champion").version)
        (folder / f"ready-{round_}-{me}").touch()
        wait_for([folder / f"ready-{round_}-{other}"])
        try:
            result = promote(model, version, tracking_uri=uri, expect_current=held)
            outcome = {"won": True, "version": version, "previous": result.previous, "held": held}
        except PromotionConflict as conflict:
            outcome = {"won": False, "version": version, "held": held, "why": str(conflict)}
        (folder / f"result-{round_}-{me}.json").write_text(json.dumps(outcome))
        wait_for([folder / f"result-{round_}-{other}.json"])


if __name__ == "__main__":
    main(*sys.argv[1:])

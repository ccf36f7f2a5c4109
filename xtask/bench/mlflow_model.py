"""The anchor for `cargo xtask bench serving`: the same model as the Kiln infer component
(the weights the train step stored, the same 4→16→3 MLP with ReLU and a softmax) as an
MLflow pyfunc, saved for `mlflow models serve --env-manager local`.

argv: KILN_URL TOKEN HANDLE VERSION OUT_DIR (the weights are fetched from the Kiln store)
"""

import json
import os
import struct
import sys
import urllib.request

import mlflow.pyfunc
import numpy as np


def read_safetensors(path):
    """The tensors of a safetensors file (F32 only), by name."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", info
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[base + start : base + end], dtype=np.float32).reshape(info["shape"])
    return tensors


class Classifier(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        t = read_safetensors(context.artifacts["weights"])
        self.hidden = (t["hidden.weight"], t["hidden.bias"])
        self.out = (t["out.weight"], t["out.bias"])

    def predict(self, context, model_input, params=None):
        x = np.asarray(model_input, dtype=np.float32)
        h = np.maximum(x @ self.hidden[0].T + self.hidden[1], 0.0)
        logits = h @ self.out[0].T + self.out[1]
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


def fetch_weights(url, token, handle, version, into):
    """The `varmap` value of model HANDLE@VERSION, as the train step stored it."""
    def get(path):
        request = urllib.request.Request(url + "/api/v1" + path, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.read()

    model = json.loads(get(f"/models/{handle}/versions/{version}"))
    run = json.loads(get(f"/runs/{model['run_id']}"))
    manifest_sha = next(a["sha256"] for a in run["artifacts"] if a["path"] == "model/manifest.json")
    manifest = json.loads(get(f"/artifacts/{manifest_sha}"))
    with open(into, "wb") as f:
        f.write(get(f"/artifacts/{manifest['values']['varmap']['sha256']}"))


if __name__ == "__main__":
    url, token, handle, version, out = sys.argv[1:6]
    weights = os.path.join(os.path.dirname(out.rstrip("/")), "weights.safetensors")
    fetch_weights(url, token, handle, version, weights)
    mlflow.pyfunc.save_model(out, python_model=Classifier(), artifacts={"weights": weights})

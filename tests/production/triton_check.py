"""Drives a deployed handle through the unmodified Triton client (tritonclient[http], KServe
v2 protocol), in a venv of its own. argv: HOST:PORT HANDLE. Prints a JSON summary.

The same rows go three ways: the client's defaults (tensors as binary after the JSON header,
both ways: Triton's binary tensor data extension), all JSON (`binary_data=False`), and binary
in with JSON out."""

import json
import sys

import numpy as np
import tritonclient.http as httpclient

url, handle = sys.argv[1], sys.argv[2]
client = httpclient.InferenceServerClient(url=url)
summary = {
    "live": client.is_server_live(),
    "ready": client.is_server_ready(),
    "model_ready": client.is_model_ready(handle),
    "metadata": client.get_model_metadata(handle),
    "server": client.get_server_metadata(),
}
rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)


def features(binary):
    tensor = httpclient.InferInput("features", list(rows.shape), "FP32")
    if binary is None:
        tensor.set_data_from_numpy(rows)
    else:
        tensor.set_data_from_numpy(rows, binary_data=binary)
    return tensor


default = client.infer(handle, inputs=[features(None)])
as_json = client.infer(handle, inputs=[features(False)], outputs=[httpclient.InferRequestedOutput("output", binary_data=False)], request_id="triton-1")
mixed = client.infer(handle, inputs=[features(True)], outputs=[httpclient.InferRequestedOutput("output", binary_data=False)])
for name, result in [("default", default), ("json", as_json), ("mixed", mixed)]:
    summary[name] = {"output": result.as_numpy("output").tolist(), "response": result.get_response()}
try:
    client.infer(handle, inputs=[httpclient.InferInput("features", [1, 3], "FP32").set_data_from_numpy(np.zeros((1, 3), dtype=np.float32))])
    summary["bad_shape"] = "accepted"
except Exception as error:  # tritonclient raises InferenceServerException with the server's message
    summary["bad_shape"] = str(error)
print(json.dumps(summary))

"""Drives a deployed handle through the unmodified Triton client (tritonclient[http], KServe
v2 protocol), in a venv of its own. argv: HOST:PORT HANDLE. Prints a JSON summary."""

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
}
rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
features = httpclient.InferInput("features", list(rows.shape), "FP32")
features.set_data_from_numpy(rows, binary_data=False)
result = client.infer(handle, inputs=[features], outputs=[httpclient.InferRequestedOutput("output", binary_data=False)], request_id="triton-1")
summary["output"] = result.as_numpy("output").tolist()
summary["response"] = result.get_response()
try:
    client.infer(handle, inputs=[httpclient.InferInput("features", [1, 3], "FP32").set_data_from_numpy(np.zeros((1, 3), dtype=np.float32), binary_data=False)])
    summary["bad_shape"] = "accepted"
except Exception as error:  # tritonclient raises InferenceServerException with the server's message
    summary["bad_shape"] = str(error)
print(json.dumps(summary))

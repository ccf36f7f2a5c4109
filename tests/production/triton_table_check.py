"""Drives a handle whose model takes a table through the unmodified Triton client
(tritonclient[http]): the inputs are built from the model's metadata alone, one named tensor
per column, as a generic client would, once with the client's defaults (binary tensors both
ways) and once all JSON (`binary_data=False`). argv: HOST:PORT HANDLE ROWS-JSON (column →
values). Prints a JSON summary."""

import json
import sys

import numpy as np
import tritonclient.http as httpclient

url, handle, rows = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = httpclient.InferenceServerClient(url=url)
metadata = client.get_model_metadata(handle)
numpy_types = {"BYTES": np.object_, "FP64": np.float64, "FP32": np.float32, "INT64": np.int64, "INT32": np.int32, "BOOL": np.bool_}


def inputs(binary):
    tensors = []
    for spec in metadata["inputs"]:
        values = np.array(rows[spec["name"]], dtype=numpy_types[spec["datatype"]])
        tensor = httpclient.InferInput(spec["name"], list(values.shape), spec["datatype"])
        tensor.set_data_from_numpy(values, binary_data=binary)
        tensors.append(tensor)
    return tensors


result = client.infer(handle, inputs=inputs(False), outputs=[httpclient.InferRequestedOutput("output", binary_data=False)], request_id="table-1")
default = client.infer(handle, inputs=inputs(True))
print(json.dumps({
    "metadata": metadata,
    "output": result.as_numpy("output").tolist(),
    "response": result.get_response(),
    "default": {"output": default.as_numpy("output").tolist(), "response": default.get_response()},
}))

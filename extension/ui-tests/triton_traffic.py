"""Bounded traffic to a handle through the serving gateway with the unmodified Triton client
(tritonclient[http], KServe v2 protocol), for the Deployments browser tests. Prints a JSON
summary: answers per model version, and failures.

argv: HOST:PORT HANDLE COUNT [REWARDS [SECONDS]], where REWARDS (`1=0.1,2=0.9`, or empty)
sends, after each answer, feedback with that version's reward to the gateway's feedback
route (Triton's client has no such call; plain HTTP does it), and SECONDS spreads the
requests evenly over that long (a live chart sees them arrive)."""

import collections
import json
import sys
import time
import urllib.request

import numpy as np
import tritonclient.http as httpclient

url, handle, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
rewards = {}
if len(sys.argv) > 4 and sys.argv[4]:
    rewards = {int(k): float(v) for k, v in (pair.split("=") for pair in sys.argv[4].split(","))}
spread = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
client = httpclient.InferenceServerClient(url=url)
started = time.monotonic()
rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
answers, failures = collections.Counter(), []
for n in range(min(count, 2000)):
    if spread > 0:
        time.sleep(max(0.0, started + spread * n / count - time.monotonic()))
    features = httpclient.InferInput("features", list(rows.shape), "FP32")
    features.set_data_from_numpy(rows, binary_data=False)
    try:
        result = client.infer(handle, inputs=[features], request_id=f"ui-{n}")
    except Exception as error:  # the client raises InferenceServerException with the server's message
        failures.append(str(error))
        continue
    response = result.get_response()
    version = int(response["model_version"])
    answers[version] += 1
    if version in rewards:
        body = json.dumps({"id": response["id"], "reward": rewards[version]}).encode()
        request = urllib.request.Request(f"http://{url}/v2/models/{handle}/feedback", data=body, headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=30).read()
print(json.dumps({"answers": {str(k): v for k, v in sorted(answers.items())}, "failures": failures[:5], "failed": len(failures)}))

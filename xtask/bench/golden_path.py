"""The anchor for `cargo xtask bench demo`: the demo's path in the anchors' own terms.

Metaflow runs the workflow (`start` makes an iris-like set like the classifier notebook's,
already clean; `train` fits a softmax classifier in numpy, less work than the notebook's
polars cleaning and MLP, so the anchor's figures are a floor, and registers it in MLflow's
model registry), then `mlflow models serve` serves the registered version until it answers. Version
1, then version 2 with other parameters (the demo's); MLflow's serving has no canary, so
version 2's server replaces version 1's.

argv: WORK_DIR OUT_JSON. Writes {"steps": [[what, seconds], …]} to OUT_JSON.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

FLOW = '''
import mlflow
import mlflow.pyfunc
import numpy as np
from metaflow import FlowSpec, Parameter, step


def noise(seed):
    """The notebook's generator: the same data on both sides."""
    x = (seed * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
    return (x >> 33) / float(1 << 31) - 0.5


class Classifier(mlflow.pyfunc.PythonModel):
    def __init__(self, weight, bias):
        self.weight, self.bias = weight, bias

    def predict(self, context, model_input, params=None):
        logits = np.asarray(model_input, dtype=np.float32) @ self.weight.T + self.bias
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


class IrisFlow(FlowSpec):
    lr = Parameter("lr", default=0.05)
    epochs = Parameter("epochs", default=300)
    samples_per_class = Parameter("samples_per_class", default=50)

    @step
    def start(self):
        centres = [[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]]
        features, labels = [], []
        for c, centre in enumerate(centres):
            for i in range(self.samples_per_class):
                features.append([centre[j] + 0.8 * noise(c * 1000 + i * 4 + j) for j in range(4)])
                labels.append(c)
        self.features = np.array(features, dtype=np.float32)
        self.labels = np.array(labels)
        self.next(self.train)

    @step
    def train(self):
        x, y = self.features, self.labels
        onehot = np.eye(3, dtype=np.float32)[y]
        weight, bias = np.zeros((3, 4), np.float32), np.zeros(3, np.float32)
        mlflow.set_experiment("iris")
        with mlflow.start_run():
            mlflow.log_params({"lr": self.lr, "epochs": self.epochs, "samples_per_class": self.samples_per_class})
            for epoch in range(self.epochs):
                logits = x @ weight.T + bias
                p = np.exp(logits - logits.max(axis=1, keepdims=True))
                p /= p.sum(axis=1, keepdims=True)
                if epoch % 10 == 0:
                    mlflow.log_metric("loss", float(-np.log(p[np.arange(len(y)), y]).mean()), step=epoch)
                grad = (p - onehot) / len(y)
                weight -= self.lr * grad.T @ x
                bias -= self.lr * grad.sum(axis=0)
            accuracy = float(((x @ weight.T + bias).argmax(axis=1) == y).mean())
            mlflow.log_metric("accuracy", accuracy, step=self.epochs)
            mlflow.pyfunc.log_model(name="model", python_model=Classifier(weight, bias), registered_model_name="iris")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    IrisFlow()
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_answer(port, server, deadline_s=300):
    body = json.dumps({"inputs": [[6.7, 3.0, 5.2, 2.3]]}).encode()
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"mlflow models serve exited ({server.returncode})")
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as answer:
                return json.loads(answer.read())
        except OSError:
            time.sleep(0.05)
    raise SystemExit("mlflow models serve did not answer within 300 s")


def main():
    work, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    (work / "iris_flow.py").write_text(FLOW)
    bin_dir = pathlib.Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(work),
        "USERNAME": os.environ.get("USER") or "kiln",
        "PYTHONWARNINGS": "ignore",
    }
    steps = []

    def timed(what, action):
        started = time.monotonic()
        result = action()
        steps.append([what, time.monotonic() - started])
        print(f"  {what}: {steps[-1][1]:.1f} s", flush=True)
        return result

    def flow(*params):
        subprocess.run([sys.executable, "iris_flow.py", "--quiet", "run", *params], cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)

    def serve(version, previous=None):
        if previous is not None:
            previous.terminate()
            previous.wait(timeout=60)
        port = free_port()
        server = subprocess.Popen(
            [str(bin_dir / "mlflow"), "models", "serve", "-m", f"models:/iris/{version}", "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
            cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        first_answer(port, server)
        return server

    servers = []
    try:
        timed("workflow v1 (data → train, register)", lambda: flow())
        servers.append(timed("serve v1 (start → first answer)", lambda: serve(1)))
        timed("workflow v2 (other parameters)", lambda: flow("--epochs", "600", "--lr", "0.08"))
        servers.append(timed("serve v2 (replaces v1: stop, start → first answer)", lambda: serve(2, servers[-1])))
    finally:
        for server in servers:
            if server.poll() is None:
                os.killpg(server.pid, 15)
                server.wait(timeout=60)
    out.write_text(json.dumps({"steps": steps}))


if __name__ == "__main__":
    main()

"""`mlflow.pyfunc.log_model` in a run, registered, then loaded back three ways, against a
Kiln server: MLflow 3's logged-model path end to end. Runs under full MLflow (pandas,
cloudpickle: `KILN_MLFLOW_PYTHON`). argv: URL TOKEN. Prints a JSON summary."""

import json
import os
import sys

import mlflow
import numpy as np

url, token = sys.argv[1], sys.argv[2]
os.environ["MLFLOW_TRACKING_TOKEN"] = token
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
mlflow.set_tracking_uri(url)


class Doubler(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return np.asarray(model_input) * 2


mlflow.set_experiment("log-model")
with mlflow.start_run() as run:
    info = mlflow.pyfunc.log_model(name="model", python_model=Doubler(), registered_model_name="doubler")
rows = np.array([[1.0, 2.0]])
summary = {
    "run_id": run.info.run_id,
    "model_id": info.model_id,
    "by_model_id": mlflow.pyfunc.load_model(info.model_uri).predict(rows).tolist(),
    "by_run": mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(rows).tolist(),
    "by_registry": mlflow.pyfunc.load_model("models:/doubler/1").predict(rows).tolist(),
    "outputs": [o.model_id for o in mlflow.MlflowClient().get_run(run.info.run_id).outputs.model_outputs],
    "version_source": mlflow.MlflowClient().get_model_version("doubler", "1").source,
}
print(json.dumps(summary))

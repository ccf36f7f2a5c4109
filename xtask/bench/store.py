"""Kiln's store vs `mlflow server` (SQLite backend), both driven over the same MLflow REST
calls by the same HTTP client, in one run on this machine. Prints medians and ratios.

Not a test: nothing here asserts a time. Started by `cargo xtask bench store`.
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import requests


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s")


class Server:
    def __init__(self, name, base, headers, proc):
        self.name, self.base, self.proc = name, base, proc
        self.session = requests.Session()
        self.session.headers.update(headers)

    def call(self, method, path, **kwargs):
        response = self.session.request(method, f"{self.base}/api/2.0/mlflow/{path}", **kwargs)
        if response.status_code != 200:
            raise SystemExit(f"{self.name} {path}: HTTP {response.status_code}: {response.text[:300]}")
        return response.json()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_kiln(binary, work):
    data = pathlib.Path(tempfile.mkdtemp(dir=work, prefix="kiln-"))
    proc = subprocess.Popen([binary, "server", "--listen", "127.0.0.1:0", "--data-dir", str(data)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "KILN_LOG": "warn"})
    line = proc.stdout.readline().strip()
    base = line.rsplit(" ", 1)[-1]
    token = (data / "admin.token").read_text().strip()
    return Server("kiln", base, {"Authorization": f"Bearer {token}"}, proc)


def start_mlflow(mlflow_bin, work):
    data = pathlib.Path(tempfile.mkdtemp(dir=work, prefix="mlflow-"))
    port = free_port()
    proc = subprocess.Popen([mlflow_bin, "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{data}/mlflow.db",
                             "--artifacts-destination", str(data / "artifacts")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PATH": f"{pathlib.Path(mlflow_bin).parent}:{os.environ['PATH']}"})
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/health")
    return Server("mlflow", base, {}, proc)


def new_run(server, experiment_id):
    return server.call("POST", "runs/create", json={"experiment_id": experiment_id, "start_time": int(time.time() * 1000)})["run"]["info"]["run_id"]


def measure(server, args):
    results = {}
    experiment_id = server.call("POST", "experiments/create", json={"name": f"bench-{time.time_ns()}"})["experiment_id"]
    run_id = new_run(server, experiment_id)

    # 1. One metric per call.
    n = args.single if server.name == "kiln" else args.single_anchor
    latencies = []
    started = time.perf_counter()
    for step in range(n):
        t = time.perf_counter()
        server.call("POST", "runs/log-metric", json={"run_id": run_id, "key": "single", "value": step * 0.5,
                                                     "timestamp": 1_700_000_000_000 + step, "step": step})
        latencies.append(time.perf_counter() - t)
    results["single_call_s"] = {"calls": n, "median": statistics.median(latencies),
                                "p99": sorted(latencies)[int(0.99 * (n - 1))], "total": time.perf_counter() - started}

    # 2. Batches of 1000 points (they also build the 100 000-point history read next).
    batch_times = []
    for b in range(args.batches):
        metrics = [{"key": "history", "value": float(i), "timestamp": 1_700_000_000_000 + i, "step": i}
                   for i in range(b * 1000, (b + 1) * 1000)]
        t = time.perf_counter()
        server.call("POST", "runs/log-batch", json={"run_id": run_id, "metrics": metrics})
        batch_times.append(time.perf_counter() - t)
    results["batch_1000_s"] = {"batches": args.batches, "median": statistics.median(batch_times)}

    # 3. Read the whole history back, following page tokens where the server pages.
    reads = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        points, token = 0, None
        while True:
            params = {"run_id": run_id, "metric_key": "history", "max_results": 100_000}
            if token:
                params["page_token"] = token
            reply = server.call("GET", "metrics/get-history", params=params)
            points += len(reply.get("metrics", []))
            token = reply.get("next_page_token")
            if not token:
                break
        reads.append(time.perf_counter() - t)
    results["history_read_s"] = {"points": points, "median": statistics.median(reads)}

    # 4. Search runs by a metric filter (populating is not timed; 8 client threads).
    search_experiment = server.call("POST", "experiments/create", json={"name": f"search-{time.time_ns()}"})["experiment_id"]

    def populate(i):
        rid = new_run(server, search_experiment)
        server.call("POST", "runs/log-batch", json={"run_id": rid, "metrics": [
            {"key": "acc", "value": i / args.runs, "timestamp": 1_700_000_000_000, "step": 0}]})

    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(populate, range(args.runs)))
    results["populate_runs_s"] = {"runs": args.runs, "total": time.perf_counter() - t}
    searches = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        reply = server.call("POST", "runs/search", json={"experiment_ids": [search_experiment],
                                                          "filter": "metrics.acc > 0.9", "max_results": 1000})
        searches.append(time.perf_counter() - t)
        found = len(reply.get("runs", []))
    results["search_s"] = {"runs": args.runs, "found": found, "median": statistics.median(searches)}

    # 5. An artifact of 1 MB and of 100 MB up and down through MLflow's artifacts proxy (the
    # same REST path on both servers, what `mlflow.log_artifact` and downloads use), checked
    # byte for byte.
    for label, size, repeats in [("1mb", 1 << 20, args.repeats), ("100mb", 100 << 20, 3)]:
        payload = os.urandom(size)
        digest = hashlib.sha256(payload).hexdigest()
        ups, downs = [], []
        for i in range(repeats):
            path = f"{server.base}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/blob-{label}-{i}.bin"
            t = time.perf_counter()
            r = server.session.put(path, data=payload, headers={"Content-Type": "application/octet-stream"})
            ups.append(time.perf_counter() - t)
            if r.status_code != 200:
                raise SystemExit(f"{server.name} upload {label}: HTTP {r.status_code}: {r.text[:300]}")
            t = time.perf_counter()
            got = hashlib.sha256()
            with server.session.get(path, stream=True) as r:
                if r.status_code != 200:
                    raise SystemExit(f"{server.name} download {label}: HTTP {r.status_code}")
                for chunk in r.iter_content(1 << 20):
                    got.update(chunk)
            downs.append(time.perf_counter() - t)
            if got.hexdigest() != digest:
                raise SystemExit(f"{server.name} download {label}: the bytes differ from the upload")
        results[f"artifact_{label}_s"] = {"repeats": repeats, "upload": statistics.median(ups), "download": statistics.median(downs)}
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", required=True)
    parser.add_argument("--mlflow", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--single", type=int, default=10_000)
    parser.add_argument("--single-anchor", type=int, default=500,
                        help="single calls against MLflow (~60 ms each: 10 000 would take 10 minutes)")
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    all_results = {}
    for name, start in [("kiln", lambda: start_kiln(args.kiln, work)), ("mlflow", lambda: start_mlflow(args.mlflow, work))]:
        print(f"== {name}", file=sys.stderr, flush=True)
        server = start()
        try:
            all_results[name] = measure(server, args)
        finally:
            server.stop()
        print(json.dumps(all_results[name], indent=1), file=sys.stderr, flush=True)

    kiln, mlflow = all_results["kiln"], all_results["mlflow"]
    rows = [
        ("log one metric per call (median)", kiln["single_call_s"]["median"], mlflow["single_call_s"]["median"]),
        ("log a batch of 1000 (median)", kiln["batch_1000_s"]["median"], mlflow["batch_1000_s"]["median"]),
        (f"read a {kiln['history_read_s']['points']}-point history", kiln["history_read_s"]["median"], mlflow["history_read_s"]["median"]),
        (f"search {args.runs} runs by a metric filter", kiln["search_s"]["median"], mlflow["search_s"]["median"]),
        ("upload a 1 MB artifact (median)", kiln["artifact_1mb_s"]["upload"], mlflow["artifact_1mb_s"]["upload"]),
        ("download a 1 MB artifact (median)", kiln["artifact_1mb_s"]["download"], mlflow["artifact_1mb_s"]["download"]),
        ("upload a 100 MB artifact (median of 3)", kiln["artifact_100mb_s"]["upload"], mlflow["artifact_100mb_s"]["upload"]),
        ("download a 100 MB artifact (median of 3)", kiln["artifact_100mb_s"]["download"], mlflow["artifact_100mb_s"]["download"]),
    ]
    print(f"\n{'operation':44} {'kiln':>11} {'mlflow':>11} {'speed-up':>9}")
    for label, k, m in rows:
        print(f"{label:44} {k * 1000:9.2f}ms {m * 1000:9.2f}ms {m / k:8.1f}x")
    print(f"\nsingle calls: kiln {kiln['single_call_s']['calls']} calls (p99 {kiln['single_call_s']['p99'] * 1000:.2f} ms), "
          f"mlflow {mlflow['single_call_s']['calls']} calls (p99 {mlflow['single_call_s']['p99'] * 1000:.2f} ms); "
          f"search found {kiln['search_s']['found']} / {mlflow['search_s']['found']} runs")
    (work / "store-results.json").write_text(json.dumps(all_results, indent=1))


if __name__ == "__main__":
    main()

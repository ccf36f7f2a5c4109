"""What the Experiments panel asks of a store, Kiln's vs `mlflow server`'s (SQLite), on the
same data, in one run on this machine: 1 000 runs × 5 params × 3 metrics, and one run with a
100 000-point curve holding one spike. Prints medians, bytes and ratios, and whether each
store's down-sampled curve still shows the spike.

The runs table: Kiln's `POST /api/v1/runs/search` (params and latest metrics in the answer)
vs MLflow's `runs/search`, each for 1 000 runs, plain and filtered + sorted. The curve:
Kiln's `POST /api/v1/metrics/history` (`max_points` 2 000, min/max per bucket) vs what
MLflow's own UI asks (`ajax-api/2.0/mlflow/metrics/get-history-bulk-interval`, 2 000
points) and its whole history (`metrics/get-history`).

With `--keep-mlflow`, MLflow's server stays up, seeded, for the page half to time MLflow's
own UI on the same data (`extension/ui-tests/tests/experiments.bench.ts`).

Not a test: nothing here asserts a time. Started by `cargo xtask bench ui`.
"""

import argparse
import concurrent.futures
import json
import pathlib
import random
import statistics
import sys
import time

from store import start_kiln, start_mlflow

RUNS = 1000
POINTS = 100_000
SPIKE_STEP = 73_421
SPIKE = 50.0
MAX_POINTS = 2000


def timed(repeats, call):
    """Median seconds of `call()` over `repeats`, and the bytes of its last answer."""
    times, size = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        response = call()
        times.append(time.perf_counter() - t)
        if response.status_code != 200:
            raise SystemExit(f"{response.request.method} {response.url}: HTTP {response.status_code}: {response.text[:300]}")
        size = len(response.content)
    return statistics.median(times), size, response.json()


def seed(server, name):
    """The same runs in either store, through MLflow's REST calls both speak."""
    experiment = server.call("POST", "experiments/create", json={"name": name})["experiment_id"]
    rng = random.Random(7)

    def one(i):
        run = server.call("POST", "runs/create", json={"experiment_id": experiment, "start_time": 1_700_000_000_000 + i, "run_name": f"run-{i:04}"})
        run_id = run["run"]["info"]["run_id"]
        params = [{"key": f"p{k}", "value": str(rng.choice([0.001, 0.01, 0.1, 1.0]) if k < 3 else rng.randint(1, 64))} for k in range(5)]
        metrics = [{"key": f"m{k}", "value": rng.random(), "timestamp": 1_700_000_000_000 + s, "step": s} for k in range(3) for s in range(10)]
        server.call("POST", "runs/log-batch", json={"run_id": run_id, "params": params, "metrics": metrics})
        return run_id

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(RUNS)))
    long_run = server.call("POST", "runs/create", json={"experiment_id": experiment, "start_time": 1_700_000_000_000, "run_name": "long"})["run"]["info"]["run_id"]
    for b in range(POINTS // 1000):
        metrics = [
            {"key": "loss", "value": SPIKE if s == SPIKE_STEP else 1.0 / (1 + s / 1000), "timestamp": 1_700_000_000_000 + s, "step": s}
            for s in range(b * 1000, (b + 1) * 1000)
        ]
        server.call("POST", "runs/log-batch", json={"run_id": long_run, "metrics": metrics})
    return experiment, long_run


def measure(server, repeats):
    name = f"experiments-{time.time_ns()}"
    print(f"== {server.name}: seeding {RUNS} runs and a {POINTS}-point curve", file=sys.stderr, flush=True)
    experiment, long_run = seed(server, name)
    server.seeded = {"experiment": experiment, "long": long_run}
    s = server.session
    results = {}
    if server.name == "kiln":
        search = lambda body: s.post(f"{server.base}/api/v1/runs/search", json={"experiments": [name], "max_results": RUNS + 1, **body})
        results["table"] = timed(repeats, lambda: search({}))[:2]
        results["table_sorted_filtered"] = timed(repeats, lambda: search({"filter": "metrics.m0 > 0.5", "order_by": ["metrics.m1 DESC"]}))[:2]
        history = lambda extra: s.post(f"{server.base}/api/v1/metrics/history", json={"runs": [long_run], "keys": ["loss"], "max_points": MAX_POINTS, **extra})
        t, size, answer = timed(repeats, lambda: history({}))
        series = answer["series"][0]
        results["curve_sampled"] = (t, size, len(series["values"]), SPIKE in series["values"])
        t, size, answer = timed(repeats, lambda: history({"from": 70_000, "to": 80_000}))
        series = answer["series"][0]
        results["curve_zoomed"] = (t, size, len(series["values"]), SPIKE in series["values"])
    else:
        search = lambda body: s.post(f"{server.base}/api/2.0/mlflow/runs/search", json={"experiment_ids": [experiment], "max_results": RUNS + 1, **body})
        results["table"] = timed(repeats, lambda: search({}))[:2]
        results["table_sorted_filtered"] = timed(repeats, lambda: search({"filter": "metrics.m0 > 0.5", "order_by": ["metrics.m1 DESC"]}))[:2]
        sampled = lambda extra: s.get(
            f"{server.base}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
            params={"run_ids": long_run, "metric_key": "loss", "max_results": MAX_POINTS, **extra},
        )
        t, size, answer = timed(repeats, lambda: sampled({}))
        values = [m["value"] for m in answer.get("metrics", [])]
        results["curve_sampled"] = (t, size, len(values), SPIKE in values)
        t, size, answer = timed(repeats, lambda: sampled({"start_step": 70_000, "end_step": 80_000}))
        values = [m["value"] for m in answer.get("metrics", [])]
        results["curve_zoomed"] = (t, size, len(values), SPIKE in values)
    t, size, answer = timed(repeats, lambda: s.get(f"{server.base}/api/2.0/mlflow/metrics/get-history", params={"run_id": long_run, "metric_key": "loss", "max_results": POINTS}))
    results["curve_whole"] = (t, size, len(answer.get("metrics", [])), True)
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", required=True)
    parser.add_argument("--mlflow", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", required=True, help="where the figures go (JSON)")
    parser.add_argument("--keep-mlflow", help="leave the seeded `mlflow server` running for the page half; "
                        "its address, experiment, long run and pid go to this file (JSON)")
    args = parser.parse_args()
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, start in [("kiln", lambda: start_kiln(args.kiln, work)), ("mlflow", lambda: start_mlflow(args.mlflow, work))]:
        server = start()
        kept = False
        try:
            results[name] = measure(server, args.repeats)
            if name == "mlflow" and args.keep_mlflow:
                pathlib.Path(args.keep_mlflow).write_text(json.dumps({"base": server.base, "pid": server.proc.pid, **server.seeded}))
                kept = True
        finally:
            # Left running only once its file says where it is (xtask stops it from there).
            if not kept:
                server.stop()
    pathlib.Path(args.out).write_text(json.dumps(results, indent=1))
    kiln, mlflow = results["kiln"], results["mlflow"]
    print(f"\n| what the panel asks (median of {args.repeats}) | Kiln | MLflow 3.17.2 | MLflow / Kiln |")
    print("|---|---:|---:|---:|")
    rows = [
        (f"runs table: {RUNS} runs with params and latest metrics", "table"),
        ("… filtered (metrics.m0 > 0.5) and sorted (metrics.m1 DESC)", "table_sorted_filtered"),
        (f"{POINTS // 1000}k-point curve, {MAX_POINTS} points asked", "curve_sampled"),
        ("… zoomed to steps 70 000–80 000", "curve_zoomed"),
        (f"{POINTS // 1000}k-point curve, whole (`get-history`)", "curve_whole"),
    ]
    for label, key in rows:
        k, m = kiln[key], mlflow[key]
        extra = lambda r: f", {r[2]} points, spike {'kept' if r[3] else 'lost'}" if len(r) > 2 and key.startswith("curve_") and key != "curve_whole" else ""
        print(f"| {label} | {k[0] * 1000:.1f} ms, {k[1] / 1024:.0f} KiB{extra(k)} | {m[0] * 1000:.1f} ms, {m[1] / 1024:.0f} KiB{extra(m)} | {m[0] / k[0]:.1f}× |")


if __name__ == "__main__":
    main()

"""Kernel benchmark: kiln-kernel vs evcxr_jupyter, driven through jupyter_client.

Run by `cargo xtask bench kernel`, which builds both kernels and writes their kernelspecs
(`bench-kiln`, `bench-evcxr`). Prints medians, ratios (kiln / evcxr) and peak RSS.
"""

import argparse
import json
import os
import pathlib
import statistics
import threading
import time

import jupyter_client
import psutil

TRIVIAL = ["let x = 1;", "x + 1", 'println!("hello");']
POLARS_DEP = ':dep polars = { version = "=0.55.2", features = ["lazy"] }\nuse polars::prelude::*;'
POLARS_FIRST = POLARS_DEP + '\nlet df = df!("k" => [1i64, 2, 1], "v" => [1.0f64, 2.0, 3.0]).unwrap();\ndf.height()'
GROUP_BY = """let n = 1_000_000usize;
let big = df!("k" => (0..n).map(|i| (i % 100) as i64).collect::<Vec<_>>(),
              "v" => (0..n).map(|i| i as f64).collect::<Vec<_>>()).unwrap();
let out = big.lazy().group_by([col("k")]).agg([col("v").sum()]).collect().unwrap();
out.height()"""


class Peak:
    """Samples the RSS of a kernel and its children (the evcxr runtime) every 50 ms."""

    def __init__(self, pid):
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                procs = [self.proc] + self.proc.children(recursive=True)
                rss = 0
                for p in procs:
                    try:
                        # cargo and rustc come and go; count only the kernel and its runtime.
                        if p.name() in ("cargo", "rustc", "mold", "ld", "cc"):
                            continue
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, rss)
            except psutil.Error:
                return
            time.sleep(0.05)


class Session:
    def __init__(self, kernel, cwd):
        self.t0 = time.perf_counter()
        self.km = jupyter_client.KernelManager(kernel_name=kernel)
        self.km.start_kernel(cwd=str(cwd))
        self.kc = self.km.client()
        self.kc.start_channels()
        msg_id = self.kc.kernel_info()
        while True:
            reply = self.kc.get_shell_msg(timeout=120)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        self.ready = time.perf_counter() - self.t0
        self.peak = Peak(self.km.provisioner.process.pid)

    def run(self, code, timeout=3600):
        start = time.perf_counter()
        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=lambda m: None)
        took = time.perf_counter() - start
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"{code!r} failed: {reply['content']}")
        return took

    def close(self):
        self.peak.stop.set()
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)
        return self.peak.peak


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def bench(kernel, args, cwd):
    r = {"ready": [], "rss": 0}
    for _ in range(args.runs):
        s = Session(kernel, cwd)
        r["ready"].append(s.ready)
        r["rss"] = max(r["rss"], s.close())
    s = Session(kernel, cwd)
    s.run(TRIVIAL[0])  # warm-up: the first cell compiles evcxr's scaffolding
    for code in TRIVIAL:
        r[code] = [s.run(code) for _ in range(args.runs)]
    if not args.skip_polars:
        s.run(POLARS_FIRST)  # builds polars once (minutes when cold)
        r["rss"] = max(r["rss"], s.close())
        s = Session(kernel, cwd)
        first = s.run(POLARS_FIRST)
        r["first polars cell, restarted kernel"] = [first]
        # What the user waits for after pressing restart: a kernel that answers at once and
        # warms up behind the first cell pays it there, one that warms up first pays it in ready.
        r["restart → first polars result (ready + cell)"] = [s.ready + first]
        r["trivial cell after polars"] = [s.run("1 + 1") for _ in range(args.runs)]
        r["group-by over 1e6 rows"] = [s.run(GROUP_BY) for _ in range(max(3, args.runs // 2))]
    r["rss"] = max(r["rss"], s.close())
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--skip-polars", action="store_true")
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    work = pathlib.Path(args.work)
    results = {}
    for name, kernel in [("kiln", "bench-kiln"), ("evcxr_jupyter", "bench-evcxr")]:
        tmp = work / f"tmp-{name}"
        tmp.mkdir(parents=True, exist_ok=True)
        os.environ["EVCXR_TMPDIR"] = str(tmp)
        print(f"== {name}", flush=True)
        results[name] = bench(kernel, args, work)
    keys = [k for k in results["kiln"] if k != "rss"]
    print()
    print(f"| step | kiln (s) | evcxr_jupyter (s) | kiln / evcxr |")
    print(f"|---|---:|---:|---:|")
    for k in keys:
        a, b = median(results["kiln"][k]), median(results["evcxr_jupyter"][k])
        print(f"| {k} | {a:.3f} | {b:.3f} | {a / b:.2f} |")
    a, b = results["kiln"]["rss"] / 2**20, results["evcxr_jupyter"]["rss"] / 2**20
    print(f"| peak RSS (MiB) | {a:.0f} | {b:.0f} | {a / b:.2f} |")
    out = work / "kernel-results.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nraw samples: {out}")


if __name__ == "__main__":
    main()

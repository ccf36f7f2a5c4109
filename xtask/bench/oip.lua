-- wrk: POST one inference request. BODY, PATH come from the environment
-- (`cargo xtask bench serving` sets them per target).
wrk.method = "POST"
wrk.body = os.getenv("KILN_BENCH_BODY")
wrk.path = os.getenv("KILN_BENCH_PATH")
wrk.headers["Content-Type"] = "application/json"

-- wrk: POST one inference request, the same each time. `cargo xtask bench serving` sets, per
-- target: KILN_BENCH_PATH, KILN_BENCH_BODY_FILE (the body; a file, since a binary body holds
-- zero bytes an environment variable cannot), and KILN_BENCH_HEADER_LENGTH when the body is
-- JSON of that many bytes then binary tensors (Triton's binary tensor data extension).
wrk.method = "POST"
wrk.path = os.getenv("KILN_BENCH_PATH")
local file = assert(io.open(os.getenv("KILN_BENCH_BODY_FILE"), "rb"))
wrk.body = file:read("*a")
file:close()
local header_length = os.getenv("KILN_BENCH_HEADER_LENGTH")
if header_length then
  wrk.headers["Content-Type"] = "application/octet-stream"
  wrk.headers["Inference-Header-Content-Length"] = header_length
else
  wrk.headers["Content-Type"] = "application/json"
end

-- wrk script for bench/run.py: after the run, print one JSON line with the raw totals.
--
-- Only `done` is defined: wrk calls it once, at the end, so the load itself runs without
-- Lua on the request path (defining `request` or `response` would slow wrk down).
-- Times are microseconds; `status` counts responses with a status >= 400 (wrk's own rule).

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"tool": "wrk", "duration_us": %d, "requests": %d, "bytes": %d, '
      .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end

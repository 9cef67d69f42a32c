"""The benchmarks' gunicorn settings: none here, everything is on the command line
(bench/server.py), so the project's own gunicorn.conf.py (access log, worker
class) does not change what is measured unless asked (BENCH_WORKER_CLASS)."""

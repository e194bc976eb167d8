"""Parts of the benchmarks tools/bench_objects.py and tools/bench_cluster.py (which put
tools/ and python/ on sys.path before importing them): the daemon and its meter, the
statistics of a case, each group of cases, and the report."""

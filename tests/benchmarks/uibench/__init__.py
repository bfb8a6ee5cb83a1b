"""Parts of tests/benchmarks/bench_ui.py: load processes, the meter, the live and refresh phases, the report."""

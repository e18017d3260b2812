"""The load tool behind ``zpomelo bench``: client processes driving any Pomelo-protocol frontend.

    from zpomelo.bench import BenchOptions, run_bench
    result = run_bench(BenchOptions(mode="echo", port=3010, clients=50, duration=10))

See load.py (orchestration), worker.py (a load process), modes.py (what each mode sends),
stats.py (histograms, /proc samples) and cli.py (the click command).
"""
from zpomelo.bench.load import BenchError, BenchOptions, run_bench

__all__ = ["BenchError", "BenchOptions", "run_bench"]

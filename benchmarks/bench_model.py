"""Benchmark the VILA model: same as `vila-nav bench-model` (see vila_nav/model/bench.py).

    python benchmarks/bench_model.py [--model PATH] [--modes fp32,int8] [num_threads=1 ...]
"""
import sys

from vila_nav.model.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Evaluation throughput benchmark (same as `vila-nav bench-eval`; flags and hydra overrides as arguments)."""
import sys

from vila_nav.evaluation.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Training throughput benchmark (same as `vila-nav bench-train`; hydra overrides as arguments)."""
import sys

from vila_nav.training.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

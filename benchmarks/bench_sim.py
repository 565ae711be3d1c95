#!/usr/bin/env python3
"""Embedded simulator benchmark (same as `vila-nav bench-sim`; hydra overrides as arguments)."""
import sys

from vila_nav.envs.bench_sim import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

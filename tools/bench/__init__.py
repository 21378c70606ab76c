"""The benchmark: every figure measured beside what bounds it, in one run (`python -m tools.bench --help`)."""

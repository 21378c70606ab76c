"""Tools around the product, not part of it: the benchmark (`python -m tools.bench`) and the reliability matrix
with its fault harness and invariants (`python -m tools.reliability`)."""

"""The reliability matrix: every step crossed with every fault, judged by invariants read from the local cloud
(`python -m tools.reliability --help`)."""

"""Benchmarks: each module measures one target against the obvious alternative, on the same input."""

"""Benchmarks for `crm bench` (bench.main): each figure beside a baseline from the same run."""

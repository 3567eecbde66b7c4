"""billbridge benchmarks: throughput and overhead, printed as ratios (see docs/performance.md)."""

"""Benchmarks and the data generator (issue 8). Never imported by the app; see bench/README section in README.md."""

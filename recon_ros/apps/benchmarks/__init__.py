"""Benchmarks behind `recon-ros bench` and the scripts in bench/: figures and ratios against a
baseline measured in the same run. Speed targets live here, never in timed tests."""

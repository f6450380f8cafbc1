"""Side-by-side benchmarks (`make bench`): every figure is a ratio measured in the same run."""

"""watchreload benchmarks: peers measured side by side (`python -m benchmarks run --quick`)."""

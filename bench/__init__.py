"""Benchmarks and the data generator behind them and behind sample_data/ (`python -m bench`)."""

"""dfbench: a benchmark harness for video world models on dense forecasting."""

__version__ = "0.1.0"

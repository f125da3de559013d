"""dfbench: a benchmark harness for video world models on dense forecasting."""

__version__ = "0.1.0"

# Part of every run identity: bump it with any change that alters a reported number, so
# records computed by older code are never resumed into a newer result.
NUMERICS_VERSION = 1

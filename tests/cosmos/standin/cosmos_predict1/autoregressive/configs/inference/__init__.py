"""Stand-in for NVIDIA's cosmos-predict1 in tests: the same import paths and call signatures."""

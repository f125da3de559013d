"""Task heads: fixed linear probes that turn (predicted) features into dense outputs."""

from dfbench.heads.linear import DepthHead, SegHead, features_to_map

__all__ = ["DepthHead", "SegHead", "features_to_map"]

"""dfbench: a benchmark harness for video world models on dense forecasting."""

__version__ = "0.1.0"

# Part of every run identity: bump it with any change that alters a reported number or
# what the records hold, so records computed by older code are never resumed into a
# newer result. 2: records of stochastic models also hold the sample scores
# (``dfbench.sample_scores``); no number of version 1 changed. 3: models that set
# ``one_clip_per_call`` (DeltaWorld's family) and DPT heads compute one clip per call, so
# their numbers at --batch-size > 1 are those of --batch-size 1 (they moved in the last bits).
# 4: version 3's in-place DeltaTok path rounded LayerScale products to bf16 under autocast
# (CUDA runs); it now runs only where it gives the library's values. fp32 numbers are unchanged.
NUMERICS_VERSION = 4

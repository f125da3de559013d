"""Training the paper's models from YAML recipes (``dfbench train``).

* :mod:`dfbench.train.recipes`: AdamW groups, warm-up then constant, clipping, losses;
* :mod:`dfbench.train.clips`: temporal offsets, shared random resized crops, feature pool;
* :mod:`dfbench.train.loop`: the loop, safetensors checkpoints, exact resume, loss CSV.
"""

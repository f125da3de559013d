"""Training the paper's models from YAML recipes (``dfbench train``).

* :mod:`dfbench.train.recipes`: AdamW groups, warm-up then constant, clipping, losses;
* :mod:`dfbench.train.clips`: temporal offsets, shared random resized crops, feature pool;
* :mod:`dfbench.train.config`: the run's YAML config (``part``: tokenizer or predictor);
* :mod:`dfbench.train.objectives`: the losses, the predictor built from its model spec;
* :mod:`dfbench.train.loop`: the loop, safetensors checkpoints, exact resume, loss CSV.
"""

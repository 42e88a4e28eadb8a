"""Which accelerator to buy: cost models, energy, like-for-like ranking and scaling (``pytest-hetero rank``)."""

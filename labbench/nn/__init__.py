"""Small shared training helpers: batching on the device, optimiser factories."""

from .batching import batch_indices, make_generator

__all__ = ["batch_indices", "make_generator"]

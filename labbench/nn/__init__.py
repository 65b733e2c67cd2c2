"""Small shared training helpers: batching on the device, optimiser factories."""

from .batching import batch_indices, make_generator
from .train import (OPTIMIZERS, autocast, cpu_threads, classifier_epoch, confusion_matrix, count_parameters, evaluate,
                    make_optimizer)

__all__ = ["batch_indices", "make_generator", "OPTIMIZERS", "autocast", "cpu_threads", "classifier_epoch", "confusion_matrix",
           "count_parameters", "evaluate", "make_optimizer"]

"""Small shared training helpers (the deep-learning kit; docs/KIT.md shows them in a loop).

- batching on the device: :func:`batch_indices`, :func:`make_generator`
- precision: :func:`precision` -> autocast context and, for fp16, a GradScaler
- compile switch: :func:`compile_model`
- loss meter: :class:`LossMeter`
- LR schedules: :func:`make_schedule`
- augmentation on the device: :func:`random_crop_flip`, :func:`normalize`
- image grids: :func:`reconstruction_grid`, :func:`sample_grid`, :func:`interpolation_strip`;
  a layer's units as images: :func:`unit_images`
- shared parameters: :class:`DeepParams`, :class:`ScheduleParams`
- saved weights: :func:`load_weights` (checkpoints go through ``run.resumable``)
- the course's random subsets: :func:`random_subsets`, :func:`mnist_subsets`
- classifier helpers: :func:`make_optimizer`, :func:`classifier_epoch`, :func:`evaluate`, ...
"""

from .augment import channel_stats, crop_flip, denormalize, normalize, random_crop_flip
from .batching import batch_indices, make_generator
from .checkpoint import CheckpointError, load_weights
from .compile import compile_model, should_compile
from .features import unit_images
from .images import interpolation_strip, lerp_latents, reconstruction_grid, sample_grid
from .meter import LossMeter
from .params import DeepParams, ScheduleParams, schedule_kwargs
from .amp import PRECISIONS, Precision, precision
from .schedules import SCHEDULES, Schedule, make_schedule
from .subsets import mnist_subsets, random_subsets
from .train import (OPTIMIZERS, autocast, classifier_epoch, confusion_matrix, count_parameters, cpu_threads, evaluate,
                    make_optimizer)

__all__ = [
    "batch_indices", "make_generator",
    "PRECISIONS", "Precision", "precision", "autocast",
    "compile_model", "should_compile",
    "LossMeter",
    "SCHEDULES", "Schedule", "make_schedule",
    "random_crop_flip", "crop_flip", "normalize", "denormalize", "channel_stats",
    "reconstruction_grid", "sample_grid", "interpolation_strip", "lerp_latents", "unit_images",
    "DeepParams", "ScheduleParams", "schedule_kwargs",
    "CheckpointError", "load_weights",
    "random_subsets", "mnist_subsets",
    "OPTIMIZERS", "cpu_threads", "classifier_epoch", "confusion_matrix", "count_parameters", "evaluate",
    "make_optimizer",
]

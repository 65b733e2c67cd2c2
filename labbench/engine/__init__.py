"""The engine: parameters, presets, the run object and run folders."""

from .params import Params, ParamsInvalid
from .registry import Exercise, all_exercises, get_exercise
from .run import Diverged, Interrupted, Run

__all__ = ["Params", "ParamsInvalid", "Exercise", "all_exercises", "get_exercise", "Run", "Diverged", "Interrupted"]

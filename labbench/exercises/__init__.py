"""The course exercises, one module each (or one per closely related pair).

Each module defines ``EXERCISE = Exercise(...)`` (or ``EXERCISES = [...]``)
and reads like the course notebook: data, model, loop, in that order.
"""

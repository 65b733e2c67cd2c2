"""Parameters shared by the deep-learning exercises, declared once.

An exercise inherits them and adds its own::

    class AutoencoderParams(DeepParams, ScheduleParams):
        epochs: int = Field(20, ge=1, description="Epochs")
        lr: float = Field(1e-3, gt=0, description="Learning rate")

The shared fields are listed after the exercise's own (in the form, in
``labbench show`` and in presets), and rules that tie fields together are
checked here, so a bad combination is refused with the key and the file line
before a run folder exists (exit 2), never half-way through a run.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, ValidationInfo, field_validator

from ..engine.params import Params

PrecisionSetting = Literal["auto", "fp32", "bf16", "fp16"]
CompileSetting = Literal[True, False, "auto"]
ScheduleKind = Literal["none", "step", "exponential", "cosine", "onecycle"]


class SharedLast(Params):
    """Base of the shared-parameter mixins: their fields go after the exercise's own."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs):
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__dict__.get("__shared_mixin__", False):
            return
        shared: list[str] = []
        for base in reversed(cls.__mro__[1:]):
            if base.__dict__.get("__shared_mixin__", False):
                shared += [k for k in base.model_fields if k not in shared and k not in SharedLast.model_fields]
        if not shared:
            return
        try:  # cosmetic: the form and presets show the exercise's own fields first
            attr = "__pydantic_fields__" if "__pydantic_fields__" in dir(cls) else "model_fields"
            fields = dict(getattr(cls, attr))
            order = [k for k in fields if k not in shared] + [k for k in shared if k in fields]
            if order != list(fields):
                setattr(cls, attr, {k: fields[k] for k in order})
                cls.model_rebuild(force=True)
        except Exception:  # pragma: no cover - another pydantic: keep its order
            pass


def _other(info: ValidationInfo, name: str):
    return (info.data or {}).get(name)


class DeepParams(SharedLast):
    """precision, compile, channels_last, data limits and the checkpoint interval."""

    __shared_mixin__ = True

    precision: PrecisionSetting = Field(
        "auto", description="auto: bf16 on GPUs that have it (fp16 + loss scaling on older ones), fp32 on the CPU; "
                            "bf16/fp16: autocast on the CPU too")
    compile: CompileSetting = Field(
        "auto", description="torch.compile the model (auto: on CUDA runs expected to take more than 3 minutes)")
    channels_last: bool = Field(True, description="Channels-last memory layout (faster convolutions)")
    train_limit: Optional[int] = Field(None, ge=1, description="Use only the first N training examples")
    test_limit: Optional[int] = Field(None, ge=1, description="Use only the first N test examples")
    checkpoint_every: Optional[int] = Field(
        None, ge=1, description="Checkpoint every N epochs (unset: when 5 minutes have passed); "
                                "always on Stop and at the end")

    @field_validator("compile", mode="before")
    @classmethod
    def _compile_words(cls, v):
        """``--set compile=True`` and ``compile = "off"`` mean what they say."""
        if isinstance(v, str) and v.strip().lower() in ("true", "on", "yes", "false", "off", "no"):
            return v.strip().lower() in ("true", "on", "yes")
        return v

    @field_validator("checkpoint_every")
    @classmethod
    def _checkpoint_within_run(cls, v, info: ValidationInfo):
        epochs = _other(info, "epochs")
        if v is not None and isinstance(epochs, int) and v > epochs:
            raise ValueError(f"every {v} epochs is more than the run's {epochs} epochs: no checkpoint before the "
                             f"end (use at most {epochs}, or leave it unset)")
        return v


class ScheduleParams(SharedLast):
    """The learning-rate schedule (see :mod:`labbench.nn.schedules`)."""

    __shared_mixin__ = True

    lr_schedule: ScheduleKind = Field(
        "none", description="LR schedule: none, step (x gamma every step_size epochs), exponential (x gamma per "
                            "epoch), cosine (to lr_min), onecycle (warm-up to lr_max, then down)")
    lr_step_size: int = Field(30, ge=1, description="Epochs between LR drops (step)")
    lr_gamma: float = Field(0.1, gt=0, le=1, description="LR factor per drop (step) or per epoch (exponential)")
    lr_min: float = Field(0.0, ge=0, description="Final LR of the cosine schedule")
    lr_max: Optional[float] = Field(None, gt=0, description="Peak LR of one-cycle (unset: lr)")

    @field_validator("lr_step_size")
    @classmethod
    def _step_within_run(cls, v, info: ValidationInfo):
        epochs = _other(info, "epochs")
        if _other(info, "lr_schedule") == "step" and isinstance(epochs, int) and v >= epochs:
            raise ValueError(f"a step every {v} epochs never comes in a run of {epochs} epochs "
                             f"(use fewer than {epochs})")
        return v

    @field_validator("lr_min")
    @classmethod
    def _min_below_lr(cls, v, info: ValidationInfo):
        lr = _other(info, "lr")
        if _other(info, "lr_schedule") == "cosine" and isinstance(lr, (int, float)) and v >= lr:
            raise ValueError(f"the cosine schedule goes down from lr ({lr:g}) to lr_min; {v:g} is not below it")
        return v

    @field_validator("lr_max")
    @classmethod
    def _max_only_for_onecycle(cls, v, info: ValidationInfo):
        kind = _other(info, "lr_schedule")
        if v is not None and kind is not None and kind != "onecycle":
            raise ValueError(f'only the onecycle schedule has a peak LR (lr_schedule is "{kind}")')
        return v


def schedule_kwargs(p: ScheduleParams) -> dict:
    """The keyword arguments of :func:`labbench.nn.make_schedule` from the params."""
    return {"step_size": p.lr_step_size, "gamma": p.lr_gamma, "min_lr": p.lr_min, "max_lr": p.lr_max}

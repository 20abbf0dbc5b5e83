"""The options a config may set on a part (a problem sampler, a replay buffer): one pydantic model per kind.

A part's options model lists exactly the keyword arguments of its class that a run config, the verl adapter or a
benchmark may set, with the class's defaults, bounds and a description on every field. The run config's
``sampler:`` / ``replay:`` section holds ``kind`` plus the options of that kind (:mod:`priorl.config`); the
registry (:mod:`priorl.registry`) pairs each kind with its class and this model. Keeping the model beside the
class it configures means a new sampler's options are written once.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PartOptions(BaseModel):
    """Base of a part's options: unknown keys are errors, values are validated and never changed afterwards.

    A part without options (the uniform sampler) uses this class itself.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

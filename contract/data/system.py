"""The optimizer's whole input (:class:`SystemData`) and its cross-reference checks.

JSON shape, as inferno's REST optimizer took it (the ``spec`` wrapper is optional)::

    {"spec": {"accelerators": {...accelerator-data...}, "capacity": {...capacity-data...},
              "models": {...model-data...}, "serviceClasses": {...serviceclass-data...},
              "servers": {...server-data...}, "optimizer": {...optimizer-data...}}}

Each part is exactly the content of one inferno data file. The collector builds this, the
optimizer service takes it on ``POST /optimize``, and :func:`contract.data.loader.load_system_dir`
reads it from a directory of the six files.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from contract.data.base import InfernoModel
from contract.data.catalog import (
    AcceleratorData,
    AcceleratorSpec,
    CapacityData,
    ModelData,
    ModelPerfEntry,
    OptimizerData,
)
from contract.data.workload import ServerData, ServerSpec, ServiceClassData, ServiceClassSpec


class SystemData(InfernoModel):
    accelerators: AcceleratorData
    capacity: CapacityData = CapacityData()
    models: ModelData
    service_classes: ServiceClassData = Field(
        default_factory=lambda: ServiceClassData(service_classes=[]), alias="serviceClasses"
    )
    servers: ServerData = ServerData()
    optimizer: OptimizerData = OptimizerData()

    @model_validator(mode="before")
    @classmethod
    def _unwrap_spec(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) == 1:
            ((key, value),) = data.items()
            if isinstance(key, str) and key.lower() == "spec" and isinstance(value, dict):
                return value
        return data

    @model_validator(mode="after")
    def _cross_references(self) -> SystemData:
        """Every reference must resolve: a model entry's accelerator, a server's model and class."""
        acc_names = {a.name for a in self.accelerators.accelerators}
        for i, entry in enumerate(self.models.models):
            if entry.acc not in acc_names:
                raise ValueError(
                    f"models.models[{i}] ({entry.name!r}): unknown accelerator {entry.acc!r}; "
                    f"known: {sorted(acc_names)}"
                )
        if not self.optimizer.optimizer.unlimited and not any(c.count for c in self.capacity.count):
            raise ValueError(
                "capacity is empty in limited mode (optimizer.unlimited is false): nothing could be "
                "allocated; give card counts per type in capacity-data or set unlimited"
            )
        model_names = {m.name for m in self.models.models}
        for i, server in enumerate(self.servers.servers):
            if server.model not in model_names:
                raise ValueError(
                    f"servers.servers[{i}] ({server.name!r}): unknown model {server.model!r}; "
                    "it has no entry in model-data"
                )
            current = server.current_alloc.accelerator
            if current and current not in acc_names:
                raise ValueError(
                    f"servers.servers[{i}] ({server.name!r}): currentAlloc.accelerator "
                    f"{current!r} is not in accelerator-data"
                )
        return self

    # Lookups used by the optimizer. Built on demand: the model is frozen and small.
    def accelerator_by_name(self) -> dict[str, AcceleratorSpec]:
        return {a.name: a for a in self.accelerators.accelerators}

    def perf_by_model(self) -> dict[str, list[ModelPerfEntry]]:
        out: dict[str, list[ModelPerfEntry]] = {}
        for entry in self.models.models:
            out.setdefault(entry.name, []).append(entry)
        return out

    def class_by_name(self) -> dict[str, ServiceClassSpec]:
        return self.service_classes.by_name()

    def startup_s(self, server: ServerSpec, accelerator: str) -> tuple[float | None, str]:
        """How long a new pod of ``server`` on ``accelerator`` takes to serve, and where that comes
        from: model-data's ``startupS`` for (model, accelerator), else the server's measured
        ``startupS`` (only for the accelerator it runs on); ``(None, "")``: unknown."""
        given = next(
            (m.startup_s for m in self.models.models if m.name == server.model and m.acc == accelerator),
            None,
        )
        if given is not None:
            return given, "model data"
        if server.startup_s is not None and accelerator == server.current_alloc.accelerator:
            return server.startup_s, "measured, creation to Ready"
        return None, ""

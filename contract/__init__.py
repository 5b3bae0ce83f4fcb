"""The wire contract between the four services: the only package through which they meet.

One cycle, all JSON over localhost::

    controller --GET /collect-->  collector   -> collect.CollectResult (its system: data.SystemData)
    controller --POST /optimize--> optimizer  <- data.SystemData (with the window's floors)
                                              -> solution.Solution
    controller --POST /update-->  actuator    <- update.UpdateRequest -> update.UpdateResponse
    GET /invoke                               -> cycle.CycleReport

- :mod:`contract.data`: inferno's data files (SystemData and its parts), typed, serialised by
  alias to inferno's JSON, with the loader the collector and the offline CLI use.
- :mod:`contract.collect`, :mod:`contract.solution`, :mod:`contract.update`, :mod:`contract.cycle`:
  the bodies above.
- :mod:`contract.labels`: the label and annotation vocabulary of a managed Deployment and the
  managed-Deployment selector.

It imports pydantic and the standard library only: no service, no plumbing.
"""

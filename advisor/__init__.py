"""The advisor: profile an endpoint into model data, and recommend a serving configuration.

``python -m advisor profile ...`` (:mod:`advisor.profile`) and ``python -m advisor recommend ...``
(:mod:`advisor.recommend`). A tool beside the four services: it does the I/O (HTTP to a model
server, the cluster's Nodes through the collector's adapter, files) around the optimizer's pure
cores, :mod:`optimizer.profiling` and :mod:`optimizer.recommend`.
"""

"""The collector service: managed Deployments, data ConfigMaps, Prometheus -> the optimizer's input.

Entry point ``python -m collector``; the core is :func:`collector.core.collect` and the pure
:func:`collector.assemble.assemble`. See collector/README.md for labels, PromQL and trust rules.
"""

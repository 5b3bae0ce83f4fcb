"""The README's demo: the whole loop, for real, against an emulated or a local real cluster.

``bash scripts/demo.sh [options]`` (= ``python -m load_emulator.demo``) starts in seconds with
nothing to build:

- :mod:`.world`: fake GPU nodes, the data ConfigMaps and labelled vLLM-like Deployments;
- :mod:`.store_view`: the fleet engine's view of the in-memory API server's store;
- :mod:`.services`: collector, optimizer, actuator and controller as subprocesses;
- :mod:`.run`: the real-time loop (load labels, ``GET /invoke``, the live table of :mod:`.table`);
- :mod:`.loop_state`: settings, result, load patterns; :mod:`.cli`: the command line.

``bash scripts/demo-cluster.sh`` (= ``--cluster``) runs the same loop on the local real cluster
(``tests/e2e/cluster``): :mod:`.local_cluster` starts it, :mod:`.cluster_world` applies the same
world, :mod:`.cluster_view` reads it back and publishes scrape targets, :mod:`.cluster_run` runs it.
"""

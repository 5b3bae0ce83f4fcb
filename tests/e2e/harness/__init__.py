"""Harness for the e2e scenarios: the four real services, the load emulator and their wiring.

Role: `services.Autoscaler` starts collector, optimizer, actuator and controller as processes
with a kubeconfig; `emulator.Emulator` runs `python -m load_emulator serve --kube` and keeps the
local Prometheus' file_sd targets in step with its pods; `data` builds the ConfigMaps and the
labelled Deployments. Everything binds 127.0.0.1 and every wait is bounded.
"""

"""End-to-end tests against a local control plane and Prometheus (see cluster/README.md)."""

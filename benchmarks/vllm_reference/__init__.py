"""vLLM's own scheduler as the reference: scenarios, the driver (run in the vLLM venv) and its runner."""

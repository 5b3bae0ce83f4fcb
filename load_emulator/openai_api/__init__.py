"""The emulated vLLM speaking vLLM's OpenAI API: real clients drive the continuous-batching engine.

- :mod:`.params`: :class:`ReplicaParams`, one replica's engine parameters (model name, perf
  schema, batch, KV cache, context length) and how output lengths are decided;
- :mod:`.launch`: :func:`start_replicas` (N replicas on loopback ports, their URLs) and the
  ``python -m load_emulator serve-openai`` command;
- :mod:`.app`: the endpoints; :mod:`.wire`: vLLM's request and response shapes;
- :mod:`.live`: the engine paced by the wall clock, token streams, lag;
- :mod:`.text`: prompt counting, output text and the shipped tokenizer (``tokenizer/``).
"""

from __future__ import annotations

from load_emulator.openai_api.launch import OpenAIReplicas, start_replicas
from load_emulator.openai_api.params import ReplicaParams
from load_emulator.openai_api.text import TOKENIZER_DIR

__all__ = ["TOKENIZER_DIR", "OpenAIReplicas", "ReplicaParams", "start_replicas"]

"""vLLM's V0 scheduler (``vllm.core.scheduler.Scheduler``, vLLM 0.8.5) behind the driver's engine
interface.

Imported by ``driver.py`` inside a vLLM 0.8.5 venv (``setup.sh 0.8.5``) when a run's
``config["engine"]`` is ``"v0"``. Built as vLLM's V0 scheduler tests build it (``SchedulerConfig``,
``CacheConfig`` with ``num_gpu_blocks``, one ``Sequence`` per ``SequenceGroup``); the per-step
bookkeeping the V0 ``LLMEngine`` does after a model step (``update_num_computed_tokens``, append
the sampled token, stop at ``max_tokens``, ``free_finished_seq_groups``) is done here.
"""

from __future__ import annotations

from typing import Any

from vllm.config import CacheConfig, SchedulerConfig
from vllm.core.scheduler import Scheduler
from vllm.inputs import token_inputs
from vllm.sampling_params import SamplingParams
from vllm.sequence import Logprob, Sequence, SequenceGroup, SequenceStatus

SAMPLED_TOKEN_ID = 7


class Engine:
    """One V0 scheduler; ``plan`` schedules a step, ``finish`` feeds its sampled tokens back."""

    def __init__(self, config: dict[str, Any], model_dir: str) -> None:
        del model_dir  # the V0 scheduler needs no model config
        scheduler_config = SchedulerConfig(
            runner_type="generate",
            max_num_batched_tokens=config["max_num_batched_tokens"],
            max_num_seqs=config["max_num_seqs"],
            max_model_len=config["max_model_len"],
            enable_chunked_prefill=config["enable_chunked_prefill"],
            long_prefill_token_threshold=config["long_prefill_token_threshold"],
            policy=config["policy"],
            preemption_mode="recompute",
        )
        cache_config = CacheConfig(
            block_size=config["block_size"],
            gpu_memory_utilization=1.0,
            swap_space=0,
            cache_dtype="auto",
            enable_prefix_caching=config["enable_prefix_caching"],
        )
        cache_config.num_gpu_blocks = config["num_blocks"]
        cache_config.num_cpu_blocks = 0
        self.scheduler = Scheduler(scheduler_config, cache_config, None)
        self.num_blocks = config["num_blocks"]
        self.block_size = config["block_size"]
        self.groups: dict[str, SequenceGroup] = {}
        self.max_tokens: dict[str, int] = {}
        self._next_seq_id = 0
        self._planned: list[tuple[SequenceGroup, int, bool]] = []
        self._preempted: list[str] = []
        original = self.scheduler._preempt

        def record(seq_group: SequenceGroup, *args: Any, **kwargs: Any) -> Any:
            self._preempted.append(seq_group.request_id)
            return original(seq_group, *args, **kwargs)

        self.scheduler._preempt = record  # records the victims in order; vLLM's logic is unchanged

    def add(self, rid: str, prompt: list[int], out_tokens: int, arrival_s: float) -> None:
        seq = Sequence(self._next_seq_id, inputs=token_inputs(prompt), block_size=self.block_size)
        self._next_seq_id += 1
        params = SamplingParams(ignore_eos=True, max_tokens=out_tokens, temperature=0.0)
        group = SequenceGroup(request_id=rid, seqs=[seq], arrival_time=arrival_s, sampling_params=params)
        self.groups[rid] = group
        self.max_tokens[rid] = out_tokens
        self.scheduler.add_seq_group(group)

    def unfinished(self) -> int:
        return int(self.scheduler.get_num_unfinished_seq_groups())

    def plan(self) -> tuple[list[tuple[str, int, int, bool, bool]], list[str], int]:
        """As the V1 engine's ``plan``: rows (id, tokens, computed after, decodes, samples),
        the preempted requests in order, the KV blocks held."""
        self._preempted = []
        _, outputs, _ = self.scheduler.schedule()
        rows, planned = [], []
        for scheduled in outputs.scheduled_seq_groups:
            group = scheduled.seq_group
            n = scheduled.token_chunk_size
            data = group.first_seq.data
            before = data.get_num_computed_tokens()  # V0 advances it after the step
            after, total = before + n, data.get_len()
            decode = n == 1 and before >= data.get_prompt_len() and before == total - 1
            sample = after >= total
            rows.append((group.request_id, n, after, decode, sample))
            planned.append((group, n, sample))
        self._planned = planned
        kv_used = self.num_blocks - self.scheduler.block_manager.get_num_free_gpu_blocks()
        return rows, list(self._preempted), kv_used

    def finish(self) -> list[str]:
        finished = []
        for group, n, sample in self._planned:
            group.update_num_computed_tokens(n)
            if not sample:
                continue
            seq = group.first_seq
            seq.append_token_id(SAMPLED_TOKEN_ID, {SAMPLED_TOKEN_ID: Logprob(0.0)})
            if seq.get_output_len() >= self.max_tokens[group.request_id]:
                seq.status = SequenceStatus.FINISHED_LENGTH_CAPPED
                self.scheduler.free_seq(seq)
                finished.append(group.request_id)
        if finished:
            self.scheduler.free_finished_seq_groups()
        return finished

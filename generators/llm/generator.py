"""The LLM generator: APIGen-style samples written by an LLM under a JSON Schema.

Per sample it draws a query style (the template generator's weighted, seeded scheme, plus
`instruction`), samples the tools shown and called (`generators.drafting.styles.make_draft`),
renders the prompt of that style (`templates/llm_generator/`, few-shot examples included) and
builds the output schema the answer must fit (`generators.llm.output_schema`). The requests of a
batch go to the backend in one call, or, where the backend can take them so (the server
backend), in parts of PIPELINE_PART sent as soon as each is fitted to the model's context; then,
if asked, augmentations make children of the results (`generators.llm.augment`). A batch of `n`
holds at most `n` samples: with augmentations, `floor(n * augment_share)` of them are children
and the rest originals.

A multi_turn sample (APIGen-MT) starts as a task blueprint asked for with the batch's other
requests and validated on the catalog's mock API (`generators.llm.blueprint`; the mock comes
from the caller as `tool_api`, see `generators.tool_api`); then a simulated user and the
assistant talk, all conversations of the batch a round at a time (`generators.llm.multi_turn`,
which says where the sample keeps its blueprint: `meta.extra["blueprint"]`).

An output that was cut at `max_tokens`, failed in the backend, or is not the JSON asked for is
returned as a sample marked in `meta.extra["generation_error"]` (see `llm.output`),
for the verifiers to reject with that reason; it is never a good sample. So is a multi_turn
blueprint whose calls fail on the mock API (`blueprint_failed`), and a conversation that does not
follow its blueprint (`blueprint_not_followed`, the conversation kept).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, ValidationError, field_validator

from generators.base import (
    GenerationRequest,
    GeneratorBase,
    derived_seed,
    pick_style,
    style_weights,
)
from generators.drafting.sample_tools import CatalogTools, CatalogToolsCache
from generators.drafting.styles import STYLES, make_draft
from generators.errors import GenerationError
from generators.llm.answer_calls import read_call
from generators.llm.augment import AUGMENTATIONS, Augmenter
from generators.llm.blueprint import parse_blueprint, read_blueprint, validate_blueprint
from generators.llm.few_shot import choose_examples, read_examples
from generators.llm.multi_turn import (
    BLUEPRINT,
    BLUEPRINT_TURNS,
    CALLS_PER_TURN,
    Talks,
    start_talk,
    talk_sample,
)
from generators.llm.output_schema import (
    CallPlan,
    SchemaLimits,
    blueprint_schema,
    call_plan,
    instruction_schema,
    sample_schema,
)
from generators.llm.prompt_budget import FittedPrompt, PromptDraft
from generators.llm.prompts import PromptSet
from generators.llm.requests import (
    GenerationUsage,
    RequestSender,
    Sampling,
    chat,
    compose_instruction,
    fit_drafts,
    rendered,
)
from generators.tool_api import ToolApiFactory
from llm.base import BackendConfig, LLMBackend, LlmDefaults, LLMResult
from llm.output import (
    BLUEPRINT_FAILED,
    PROMPT_TOO_LONG,
    UNPARSEABLE,
    Unparseable,
    failure_extra,
    generation_failure,
    parse_object,
    result_failure,
)
from llm.shared import shared_backend
from unified.constraints import Constraint, sample_constraints
from unified.formats.base import infer_style
from unified.model import QueryStyle, Sample, SampleMeta, Step, Tool
from unified.options import option_problem
from unified.values.value_kinds import name_words

GENERATOR_NAME = "llm"
PROMPT_TRIMMED = "prompt_trimmed"
"""`meta.extra` key: how a prompt was trimmed to fit the model's context (see prompt_budget)."""
PIPELINE_PART = 32
"""Prompts fitted and sent together where the backend takes parts while the next are measured."""
LLM_STYLES = tuple(dict.fromkeys((*STYLES, QueryStyle.instruction, QueryStyle.multi_turn)))
"""The styles the LLM generator makes, in the order that turns weights into a choice (the
template generator's order, so that the same seed draws the same function-calling styles)."""
MULTI_TOOLS = (2, 4)
"""How many tools a multi_turn sample shows: at least, at most (as the catalog has them)."""
DOMAIN_RATE = 0.7
"""How often an instruction-following sample's subject is drawn from a catalog tool."""
_TOPIC_WORD = re.compile(r"[A-Za-z]{5,}")
_COMMON = frozenset(
    ["about", "which", "their", "there", "these", "those", "where", "would", "could", "other"]
)


class LlmOptions(BackendConfig):
    """`GenerationRequest.options` of the llm generator: the backend (every `BackendConfig` field:
    backend, model, base_url, api_key, ...), sampling, prompts, examples, augmentation, limits."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(1024, ge=16, description="Most tokens one answer may take.")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling.")
    templates_dir: str | None = Field(
        None, description="A directory of one's own prompt templates (missing ones: bundled)."
    )
    examples: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Earlier accepted samples (unified JSON) to use as few-shot examples.",
    )
    num_examples: int = Field(2, ge=0, le=8, description="Few-shot examples per prompt.")
    catalog_examples: int = Field(
        0,
        ge=0,
        le=1000,
        description="In the service: up to this many accepted samples of earlier jobs on the "
        "same catalog (newest job first, held-out samples left out) join `examples`.",
    )
    augment: list[str] = Field(
        default_factory=list, description=f"Augmentations: {', '.join(AUGMENTATIONS)}."
    )
    augment_share: float = Field(
        0.5, gt=0, lt=1, description="Share of a batch's samples that are augmented children."
    )
    constraints: int = Field(2, ge=1, le=4, description="Constraints per instruction sample.")
    max_query_chars: int = Field(1000, ge=16, description="Longest query or instruction.")
    max_text_chars: int = Field(4000, ge=16, description="Longest response or answer.")
    max_string_chars: int = Field(500, ge=1, description="Longest free string argument.")
    max_items: int = Field(8, ge=1, description="Longest array argument.")
    max_calls: int = Field(4, ge=2, le=16, description="Most calls of a parallel sample.")
    max_turns: int = Field(
        4,
        ge=2,
        le=8,
        description="Most user turns of a multi_turn conversation; its blueprint plans 2 or 3.",
    )
    created: datetime | None = Field(
        None, description="meta.created of every sample (default: now), for identical reruns."
    )

    @field_validator("augment")
    @classmethod
    def _known_augmentations(cls, value: list[str]) -> list[str]:
        unknown = [kind for kind in value if kind not in AUGMENTATIONS]
        if unknown:
            raise ValueError(
                f"unknown augmentation '{unknown[0]}'; known: {', '.join(AUGMENTATIONS)}"
            )
        return list(dict.fromkeys(value))

    def backend_config(self) -> BackendConfig:
        """The backend part of the options."""
        return BackendConfig.model_validate(
            {name: getattr(self, name) for name in BackendConfig.model_fields}
        )

    def limits(self) -> SchemaLimits:
        """The caps the output schemas put on what the model writes."""
        return SchemaLimits(
            max_query_chars=self.max_query_chars,
            max_text_chars=self.max_text_chars,
            max_string_chars=self.max_string_chars,
            max_items=self.max_items,
            max_calls=self.max_calls,
        )

    def sampling(self) -> Sampling:
        """How the model samples."""
        return Sampling(self.max_tokens, self.temperature, self.top_p)


def read_options(options: dict[str, Any]) -> LlmOptions:
    """The request's options, validated; `GenerationError` names the first bad option."""
    try:
        return LlmOptions.model_validate(options)
    except ValidationError as exc:
        raise GenerationError(f"llm generator: {option_problem(exc, LlmOptions)}") from None


@dataclass
class _Planned:
    """One original sample before the LLM answered: what was drawn and the request for it."""

    index: int
    requested: QueryStyle
    style: QueryStyle
    tools: list[Tool]
    prompt: PromptDraft
    schema: dict[str, Any]
    seed: int
    document: str | None = None
    constraints: list[Constraint] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Batch:
    """What every sample of one `generate` call shares."""

    request: GenerationRequest
    options: LlmOptions
    prompts: PromptSet
    catalog: CatalogTools
    examples: dict[QueryStyle, list[dict[str, Any]]]
    created: datetime
    task_instruction: str
    format_instruction: str


class LlmGenerator(GeneratorBase):
    """Makes samples of every query style, and instruction-following samples, with an LLM.

    `backend`, when given, is used instead of the one the request's options name (tests, or a
    caller that manages its own backend); otherwise the process-wide `shared_backend` is used.
    `tool_api` (or `use_tool_api`) makes the mock API that multi_turn samples run their calls
    on, one conversation state per blueprint check and per dialogue
    (`service.pipeline.tool_api.MockToolApi`, which the service gives); without it, asking for
    multi_turn samples is a `GenerationError`.
    """

    name = "llm generator"
    uses_llm = True
    required_stages = ("generation",)  # verifiers.generation rejects the failed generations

    def __init__(
        self, backend: LLMBackend | None = None, tool_api: ToolApiFactory | None = None
    ) -> None:
        self._backend = backend
        self._tool_api = tool_api
        self._prompt_sets: dict[str, PromptSet] = {}
        self._catalogs = CatalogToolsCache()
        self.last_usage: GenerationUsage | None = None
        """The usage of the latest `generate` call."""

    def use_tool_api(self, tool_api: ToolApiFactory) -> None:
        """Run multi_turn samples' calls on `tool_api`'s APIs from now on."""
        self._tool_api = tool_api

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> LlmOptions:
        """The options, validated without loading anything (`GenerationError` names the first
        bad one). Template files are checked where they are used: a worker may see other files
        than the API that takes the job."""
        if "model" not in options:
            raise GenerationError(
                "the llm generator needs 'model' (the name the server serves, or a local path "
                "for backend 'vllm'); give it, or set AF_LLM_MODEL (and AF_LLM_BASE_URL for a "
                "server) where the API runs"
            )
        return read_options(dict(options))

    @classmethod
    def with_llm_defaults(cls, options: Mapping[str, Any], llm: LlmDefaults) -> dict[str, Any]:
        """The deployment's server as backend `openai` where the options name no backend, its
        base URL for an `openai` backend that names none, its model where none is named."""
        filled = dict(options)
        if llm.base_url and "backend" not in filled:
            filled["backend"] = "openai"
        if llm.base_url and filled.get("backend") == "openai":
            filled.setdefault("base_url", llm.base_url)
        if llm.model:
            filled.setdefault("model", llm.model)
        return filled

    def prompt_set(self, directory: str | None) -> PromptSet:
        """The checked prompt templates of `directory` (None: the bundled ones), loaded once."""
        key = str(Path(directory).resolve()) if directory else ""
        prompts = self._prompt_sets.get(key)
        if prompts is None:
            prompts = self._prompt_sets[key] = PromptSet(directory)
        return prompts

    def generate(self, tools: Sequence[Tool], request: GenerationRequest) -> list[Sample]:
        """At most `request.n` samples with ids `f"{request.id_prefix}{i}"`; the usage goes to
        `last_usage`."""
        return self.generate_with_usage(tools, request)[0]

    def generate_with_usage(
        self, tools: Sequence[Tool], request: GenerationRequest
    ) -> tuple[list[Sample], GenerationUsage]:
        """The samples of `generate`, and what making them cost (requests, tokens, seconds)."""
        options = read_options(request.options)
        prompts = self.prompt_set(options.templates_dir)
        weights = style_weights(request, LLM_STYLES, "llm generator")
        if self._tool_api is None and any(s is QueryStyle.multi_turn for s, _ in weights):
            raise GenerationError(
                "llm generator: multi_turn samples run their calls on the catalog's mock API, "
                "and this generator was made without one (tool_api); run it in the service, "
                "or give it tool_api=service.pipeline.tool_api.MockToolApi"
            )
        batch = _Batch(
            request=request,
            options=options,
            prompts=prompts,
            catalog=self._catalog(tools, weights),
            examples=read_examples(options.examples),
            created=_created(options),
            task_instruction=prompts.render(
                "task_instruction.j2", {"tool_format": None, "tools_text": ""}
            ),
            format_instruction=prompts.render(
                "format_instruction.j2", {"call_format": "json_object"}
            ),
        )
        originals, children = split_count(request.n, options)
        planned = [self._plan(index, batch, weights) for index in range(originals)]
        backend = self._backend or shared_backend(options.backend_config())
        usage = GenerationUsage()
        sender = RequestSender(backend, usage)
        # Fitted and sent part by part, so that the server answers the first part while the
        # next ones are measured (one part where the backend cannot take them so).
        part = PIPELINE_PART if sender.pipelined else max(1, len(planned))
        fitted: list[FittedPrompt | None] = []
        for start in range(0, len(planned), part):
            chunk = planned[start : start + part]
            fitted_chunk = _fitted_prompts(chunk, backend, options)
            sender.send(
                {
                    p.index: options.sampling().request(messages, p.schema, p.seed)
                    for p, messages in zip(chunk, _messages(chunk, fitted_chunk), strict=True)
                    if messages is not None
                }
            )
            fitted += fitted_chunk if fitted_chunk is not None else [None] * len(chunk)
        results = sender.results()
        samples = [
            self._sample(p, results.get(p.index), fitted[n], batch, usage)
            for n, p in enumerate(planned)
        ]
        self._talk(samples, planned, batch, backend, usage)
        if children:
            augmenter = Augmenter(prompts, options.sampling(), options.limits())
            made = augmenter.augment(
                samples, options.augment, children, request.seed, backend, usage
            )
            samples += [
                child.model_copy(update={"id": f"{request.id_prefix}{originals + position}"})
                for position, child in enumerate(made)
            ]
        usage.samples = len(samples)
        self.last_usage = usage
        return samples, usage

    def _catalog(
        self, tools: Sequence[Tool], weights: list[tuple[QueryStyle, float]]
    ) -> CatalogTools:
        if not tools and any(style is not QueryStyle.instruction for style, _ in weights):
            raise GenerationError(
                "llm generator: the catalog has no tools; load a catalog with at least one, "
                "or ask for instruction samples only (styles: {instruction: 1})"
            )
        return self._catalogs.get(tools)

    def _plan(self, index: int, batch: _Batch, weights: list[tuple[QueryStyle, float]]) -> _Planned:
        seed = derived_seed(batch.request.seed, index)
        rng = random.Random(seed)
        requested = pick_style(weights, rng)
        options = batch.options
        if requested is QueryStyle.instruction:
            return self._plan_instruction(index, seed, rng, batch)
        if requested is QueryStyle.multi_turn and batch.catalog.callable:
            return self._plan_multi_turn(index, seed, rng, batch)
        # A catalog with no tool that can be called gives an irrelevance sample instead, as the
        # function-calling styles fall back to it.
        wanted = QueryStyle.irrelevance if requested is QueryStyle.multi_turn else requested
        draft = make_draft(wanted, batch.catalog, rng)
        shown = [tool.copy() for tool in draft.shown]
        called = [tool.tool.name for tool, _ in draft.calls]
        limits = options.limits()
        plan = call_plan(draft.style, [tool.name for tool in shown], called, limits)
        left_out = draft.phrased_from.tool if draft.phrased_from is not None else None
        variables = {
            "style": draft.style.value,
            "tools": [tool.openai()["function"] for tool in shown],
            "call_tools": list(plan.tools),
            "min_calls": plan.min_calls,
            "max_calls": plan.max_calls,
            "left_out": left_out.openai()["function"] if left_out is not None else None,
            "examples": choose_examples(
                draft.style, options.num_examples, batch.examples, batch.prompts.seeds, rng
            ),
        }
        prompt = PromptDraft(
            variables, partial(chat, batch.prompts, "function_calling", f"{draft.style.value}.j2")
        )
        schema = sample_schema(draft.style, shown, plan, limits)
        first = draft.calls[0][0] if draft.calls else draft.phrased_from
        extra: dict[str, Any] = {}
        if draft.style is QueryStyle.irrelevance:
            extra["phrased_from"] = left_out.name if left_out is not None else None
        return _Planned(
            index=index,
            requested=requested,
            style=draft.style,
            tools=shown,
            prompt=prompt,
            schema=schema,
            seed=seed,
            document=first.document if first is not None else None,
            extra=extra,
        )

    def _plan_multi_turn(
        self, index: int, seed: int, rng: random.Random, batch: _Batch
    ) -> _Planned:
        options = batch.options
        callable_tools = batch.catalog.callable
        count = min(len(callable_tools), rng.randint(*MULTI_TOOLS))
        chosen = rng.sample(callable_tools, count)
        shown = [tool.copy() for tool in chosen]
        limits = options.limits()
        turns = (BLUEPRINT_TURNS[0], min(BLUEPRINT_TURNS[1], options.max_turns))
        names = tuple(tool.name for tool in shown)
        plan = CallPlan(names, 1, min(CALLS_PER_TURN, limits.max_calls))
        variables = {
            "tools": [tool.openai()["function"] for tool in shown],
            "min_turns": turns[0],
            "max_turns": turns[1],
            "max_calls": plan.max_calls,
            "examples": choose_examples(
                QueryStyle.multi_turn,
                options.num_examples,
                batch.examples,
                batch.prompts.seeds,
                rng,
            ),
        }
        prompt = PromptDraft(variables, partial(chat, batch.prompts, "blueprint", "blueprint.j2"))
        return _Planned(
            index=index,
            requested=QueryStyle.multi_turn,
            style=QueryStyle.multi_turn,
            tools=shown,
            prompt=prompt,
            schema=blueprint_schema(shown, turns, plan, limits),
            seed=seed,
            document=chosen[0].document,
        )

    def _plan_instruction(
        self, index: int, seed: int, rng: random.Random, batch: _Batch
    ) -> _Planned:
        options = batch.options
        task = rng.choice(batch.prompts.seeds.instruction_tasks)
        domain = None
        if batch.catalog.tools and rng.random() < DOMAIN_RATE:
            domain = rng.choice(batch.catalog.tools).tool
        constraints = sample_constraints(options.constraints, rng, _topic_words(domain))
        variables = {
            "task": task,
            "domain": domain.openai()["function"] if domain is not None else None,
            "constraints": [constraint.text for constraint in constraints],
            "examples": choose_examples(
                QueryStyle.instruction,
                options.num_examples,
                batch.examples,
                batch.prompts.seeds,
                rng,
            ),
        }
        prompt = PromptDraft(
            variables, partial(chat, batch.prompts, "instruction", "instruction.j2")
        )
        schema = instruction_schema(options.limits())
        return _Planned(
            index=index,
            requested=QueryStyle.instruction,
            style=QueryStyle.instruction,
            tools=[],
            prompt=prompt,
            schema=schema,
            seed=seed,
            document=domain.source.document if domain is not None and domain.source else None,
            constraints=constraints,
            extra={"task": task, "domain": domain.name if domain is not None else None},
        )

    def _sample(
        self,
        planned: _Planned,
        result: LLMResult | None,
        fitted: FittedPrompt | None,
        batch: _Batch,
        usage: GenerationUsage,
    ) -> Sample:
        """The sample of one planned request: `result` is None for a prompt that was never
        sent (too long for the model's context)."""
        options = batch.options
        instruction = planned.style is QueryStyle.instruction
        extra: dict[str, Any] = {
            "index": planned.index,
            "requested_style": planned.requested.value,
            "model": options.model,
            "backend": options.backend,
            "prompt_tokens": result.prompt_tokens if result is not None else 0,
            "completion_tokens": result.completion_tokens if result is not None else 0,
            **planned.extra,
        }
        trimmed = fitted.record() if fitted is not None else None
        if trimmed is not None:
            extra[PROMPT_TRIMMED] = trimmed
        if instruction:
            extra["constraints"] = [constraint.as_dict() for constraint in planned.constraints]
        style = planned.style
        query = ""
        steps: list[Step] = []
        if result is None:
            detail = fitted.too_long_detail() if fitted is not None else "the prompt was not sent"
            failure: tuple[str, str] | None = (PROMPT_TOO_LONG, detail)
        else:
            failure = result_failure(result, options.max_tokens)
        if failure is None and result is not None:
            try:
                if instruction:
                    query, steps = _instruction_parts(result.text, planned, extra)
                elif style is QueryStyle.multi_turn:
                    failure = self._blueprint(result.text, planned, extra)
                else:
                    query, steps = _call_parts(result.text)
                    style = infer_style(
                        [c for s in steps for c in s.tool_calls], len(planned.tools)
                    )
            except Unparseable as exc:
                failure = (UNPARSEABLE, str(exc))
        if failure is not None:
            usage.count_failure(failure[0])
            extra.update(failure_extra(failure[0], failure[1], result.text if result else ""))
        document = planned.document
        return Sample(
            id=f"{batch.request.id_prefix}{planned.index}",
            task_instruction="" if instruction else batch.task_instruction,
            tools=planned.tools,
            format_instruction="" if instruction else batch.format_instruction,
            query=query,
            steps=steps,
            meta=SampleMeta(
                style=style,
                source=f"{GENERATOR_NAME}:{document}" if document else GENERATOR_NAME,
                generator=GENERATOR_NAME,
                seed=batch.request.seed,
                created=batch.created,
                extra=extra,
            ),
        )

    def _blueprint(
        self, text: str, planned: _Planned, extra: dict[str, Any]
    ) -> tuple[str, str] | None:
        """Read the blueprint into `extra`, validated on a mock of the sample's tools: why it
        fails, or None."""
        assert self._tool_api is not None  # checked before anything is planned
        blueprint = parse_blueprint(text)
        problem = validate_blueprint(blueprint, self._tool_api(planned.tools).conversation())
        extra[BLUEPRINT] = blueprint.as_dict()
        return (BLUEPRINT_FAILED, problem) if problem is not None else None

    def _talk(
        self,
        samples: list[Sample],
        planned: Sequence[_Planned],
        batch: _Batch,
        backend: LLMBackend,
        usage: GenerationUsage,
    ) -> None:
        """Hold the conversations of the multi_turn samples whose blueprint passed, all of the
        batch together, and put the finished ones in their places in `samples`."""
        api = self._tool_api
        if api is None:  # no multi_turn sample was planned: generate refuses them without one
            return
        talks = [
            start_talk(
                position,
                sample,
                read_blueprint(sample.meta.extra[BLUEPRINT]),
                api(sample.tools).conversation(),
                batch.options.max_turns,
                p.seed,
            )
            for position, (sample, p) in enumerate(zip(samples, planned, strict=True))
            if p.style is QueryStyle.multi_turn and generation_failure(sample) is None
        ]
        if not talks:
            return
        options = batch.options
        runner = Talks(
            batch.prompts,
            options.sampling(),
            options.limits(),
            backend,
            options.max_model_len,
            usage,
        )
        runner.run(talks)
        for talk in talks:
            samples[talk.position] = talk_sample(talk, usage)


def _fitted_prompts(
    planned: Sequence[_Planned], backend: LLMBackend, options: LlmOptions
) -> list[FittedPrompt] | None:
    """The prompts fitted to the model's context, or None where its length is not known (the
    prompts go out as rendered)."""
    drafts = [p.prompt for p in planned]
    return fit_drafts(drafts, backend, options.max_model_len, options.max_tokens)


def _messages(
    planned: Sequence[_Planned], fitted: list[FittedPrompt] | None
) -> list[list[dict[str, str]] | None]:
    """What each planned request sends: None for a prompt that cannot fit."""
    return rendered([p.prompt for p in planned], fitted)


def split_count(n: int, options: LlmOptions) -> tuple[int, int]:
    """How many of a batch of `n` are originals and how many augmented children."""
    if not options.augment or n < 2:
        return n, 0
    children = min(n - 1, math.floor(n * options.augment_share))
    return n - children, children


def _instruction_parts(
    text: str, planned: _Planned, extra: dict[str, Any]
) -> tuple[str, list[Step]]:
    data = parse_object(text, {"instruction": str, "response": str})
    instruction = data["instruction"].strip()
    extra["instruction"] = instruction
    query = compose_instruction(instruction, [c.text for c in planned.constraints])
    return query, [Step(answer=data["response"])]


def _call_parts(text: str) -> tuple[str, list[Step]]:
    data = parse_object(text, {"query": str, "calls": list})
    calls = [read_call(item, f"call {number}") for number, item in enumerate(data["calls"])]
    answer = data.get("answer")
    if calls:
        return data["query"].strip(), [Step(tool_calls=calls)]
    if isinstance(answer, str) and answer.strip():
        return data["query"].strip(), [Step(answer=answer.strip())]
    return data["query"].strip(), []


def _topic_words(tool: Tool | None) -> list[str]:
    """Words of a tool's name and description that a keyword constraint can ask for."""
    if tool is None:
        return []
    words = [*name_words(tool.name), *_TOPIC_WORD.findall(tool.description)]
    return sorted({w.lower() for w in words if len(w) >= 5 and w.lower() not in _COMMON})


def _created(options: LlmOptions) -> datetime:
    moment = options.created or datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

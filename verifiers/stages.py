"""Verification stages by name, and the pipeline that runs them in order over a batch.

A stage judges a batch of samples at once (an LLM judge or a de-duplicator needs the whole
batch) against a `StageContext` (the catalog's tools, the source of its Python modules, each
stage's options, state kept across batches) and returns one verdict per sample: a plain list of
verdicts, or a `StageResult` that also carries the samples it updated (the execution stage adds
the results of their calls). A sample leaves the pipeline at the first stage that rejects it; the
stages after that never see it, and see the samples as the stages before them left them.

A stage is a class registered under its name (`STAGES`, or the entry point group
`actionforge.stages`). It declares the options it takes as a pydantic model (`options_model`:
a job gives them per stage, checked before anything is queued) and reads them with
`context.options_for(self)`; state it keeps across the batches judged with one context lives in
`context.state(self.name, factory)` (the job engine makes a context per batch: its batches run
on many workers). A stage whose verdicts depend on the samples kept before in job order (dedup)
declares `ordered = True` and the `OrderedStage` methods, so the job engine can run it in
position order with its state in the database, whatever order workers verify batches in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from llm.base import LlmDefaults
from unified.errors import ActionForgeError
from unified.model import Sample, Tool
from unified.options import option_problem
from unified.registry import Registry
from verifiers.format import STAGE as FORMAT_STAGE
from verifiers.format import FormatVerifier
from verifiers.verdict import Reason, Verdict

# The STAGE names of the other stages' modules, written out so that naming the stages does not
# import what they need (datasketch, the response sampler, the LLM backends).
GENERATION_STAGE = "generation"
QUERY_STAGE = "query"
GROUNDING_STAGE = "grounding"
COVERAGE_STAGE = "coverage"
EXECUTION_STAGE = "execution"
SEMANTIC_STAGE = "semantic"
DEDUP_STAGE = "dedup"
DEFAULT_STAGES = (QUERY_STAGE, FORMAT_STAGE, GROUNDING_STAGE, COVERAGE_STAGE)
"""What a job, and `actionforge verify`, run when told no stages: the checks of form and of
meaning that need no LLM."""
PYTHON_SOURCE = "python"
"""`ToolSource.kind` of tools read from a Python module: the execution stage runs them."""


State = TypeVar("State")


class NoOptions(BaseModel):
    """The options of a stage that takes none."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class StageContext:
    """What stages judge samples against.

    `tools`: the catalog's tools. `modules`: Python module sources by module name, for tools
    whose `source.callable` is `module:function`. `catalog_only`: check calls against `tools`
    even when a sample carries tools of its own (by default a sample's own tools come first).
    `options`: each stage's options by stage name (checked with `check_stage_options`).
    State a stage keeps lives as long as the context: verify batches in order with one context
    and, say, later batches are de-duplicated against the earlier ones.
    """

    tools: Sequence[Tool] = ()
    modules: Mapping[str, str] = field(default_factory=dict)
    catalog_only: bool = False
    options: dict[str, BaseModel] = field(default_factory=dict)
    _state: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def for_catalog(
        cls, tools: Sequence[Tool], document: str | None = None, *, catalog_only: bool = False
    ) -> StageContext:
        """The context of a catalog's tools; `document` is the catalog's original text, kept
        as the module source of its Python-module tools."""
        return cls(
            tools=list(tools),
            modules=python_modules(tools, document),
            catalog_only=catalog_only,
        )

    def tools_for(self, sample: Sample) -> Sequence[Tool]:
        """The tools a sample's calls are checked against."""
        if sample.tools and not (self.catalog_only and self.tools):
            return sample.tools
        return self.tools

    def options_for(self, stage: Stage) -> Any:
        """The stage's options: those given, else its options model's defaults."""
        given = self.options.get(stage.name)
        return given if given is not None else stage.options_model()

    def state(self, name: str, factory: Callable[[], State]) -> State:
        """What the stage `name` keeps across the batches judged with this context, made by
        `factory` the first time."""
        if name not in self._state:
            self._state[name] = factory()
        kept: State = self._state[name]
        return kept


def python_callable(tool: Tool) -> str | None:
    """`module:function` of a tool read from a Python module; None for any other tool."""
    source = tool.source
    if source is None or source.kind != PYTHON_SOURCE or not source.callable:
        return None
    return source.callable


def python_modules(tools: Sequence[Tool], document: str | None) -> dict[str, str]:
    """Module name -> source for the Python-module tools of a catalog whose text is `document`
    (a Python catalog is one module); empty without a document."""
    if document is None:
        return {}
    names = {ref.partition(":")[0] for tool in tools if (ref := python_callable(tool))}
    return {name: document for name in names if name}


@dataclass(frozen=True)
class StageResult:
    """A stage's verdicts, one per sample in order, and the samples as the stage left them
    (None: unchanged)."""

    verdicts: list[Verdict]
    samples: list[Sample] | None = None


class Stage(Protocol):
    """One verification stage: judges samples in the context of the job's catalog."""

    name: str
    options_model: ClassVar[type[BaseModel]]
    """The options a job may give the stage (`NoOptions`: none)."""
    ordered: ClassVar[bool]
    """The stage's verdicts depend on what it kept before in job order (see `OrderedStage`)."""
    judges_conversations: ClassVar[bool]
    """The stage judges every turn of a multi-turn sample; a stage that does not (or lacks the
    attribute) gives such a sample a `multi_turn_not_judged` rejection instead of judging only
    its first turn."""

    @classmethod
    def with_llm_defaults(cls, options: Mapping[str, Any], llm: LlmDefaults) -> dict[str, Any]:
        """The options with the deployment's LLM filled in where the stage needs one."""
        ...

    def verify_batch(
        self, samples: Sequence[Sample], context: StageContext
    ) -> StageResult | list[Verdict]:
        """One verdict per sample, in the order of `samples` (and the updated samples)."""
        ...


class OrderedStage(Stage, Protocol):
    """A stage judged in job position order against the samples it kept before (dedup).

    The job engine runs it last and keeps its state in the database: `prepare` turns a sample
    into bytes once (outside any transaction), `lookup_keys` says under which keys a kept
    sample is found again, and `judge_in_order` judges waiting samples, in position order,
    against the kept ones that share a key with them (earlier jobs first, then by position).
    """

    def prepare(self, sample: Sample) -> bytes: ...

    def lookup_keys(self, prepared: bytes) -> list[tuple[int, int]]:
        """(slot, key) pairs; two samples the stage would compare share at least one key."""
        ...

    def judge_in_order(
        self,
        waiting: Sequence[tuple[str, bytes]],
        kept_before: Iterable[tuple[str, bytes]],
        options: Any,
    ) -> list[Verdict]: ...


class StageBase:
    """Defaults for the `Stage` members a stage need not define: no options, no LLM, not
    ordered."""

    name: str = ""
    options_model: ClassVar[type[BaseModel]] = NoOptions
    ordered: ClassVar[bool] = False
    judges_conversations: ClassVar[bool] = False

    @classmethod
    def with_llm_defaults(cls, options: Mapping[str, Any], llm: LlmDefaults) -> dict[str, Any]:
        return dict(options)


class SampleCheckStage(StageBase):
    """A stage that judges each sample on its own: `problem` says why a sample is rejected
    (reason code and detail), or None."""

    def problem(self, sample: Sample, context: StageContext) -> tuple[str, str] | None:
        raise NotImplementedError

    def verify_batch(self, samples: Sequence[Sample], context: StageContext) -> list[Verdict]:
        """One verdict per sample, in order."""
        verdicts = []
        for sample in samples:
            found = self.problem(sample, context)
            verdicts.append(
                Verdict.accept(self.name)
                if found is None
                else Verdict.reject(self.name, found[0], found[1])
            )
        return verdicts


class FormatStage(StageBase):
    """The format stage: calls name a tool offered to the sample and fit its JSON Schema.

    A sample that carries its own tools is checked against those (it may only call what it was
    offered) unless the context says `catalog_only`; one without tools against the catalog.
    """

    name = FORMAT_STAGE
    judges_conversations = True

    def __init__(self) -> None:
        self._verifier = FormatVerifier()

    def verify_batch(self, samples: Sequence[Sample], context: StageContext) -> list[Verdict]:
        """Check every sample's calls; never raises on bad calls."""
        return [self._verifier.verify(s, context.tools_for(s)) for s in samples]


STAGES = Registry(
    "verification stage",
    {
        GENERATION_STAGE: "verifiers.generation:GenerationStage",
        FORMAT_STAGE: "verifiers.stages:FormatStage",
        QUERY_STAGE: "verifiers.query_sanity:QueryStage",
        GROUNDING_STAGE: "verifiers.grounding:GroundingStage",
        COVERAGE_STAGE: "verifiers.coverage:CoverageStage",
        EXECUTION_STAGE: "verifiers.execution:ExecutionStage",
        SEMANTIC_STAGE: "verifiers.judge:SemanticStage",
        DEDUP_STAGE: "verifiers.dedup:DedupStage",
    },
    "actionforge.stages",
)


class StageOrderError(ActionForgeError):
    """The stages of a pipeline are listed in an order that cannot run."""


class StageDefinitionError(ActionForgeError):
    """A registered stage does not define what the `Stage` protocol asks for."""


class StageOptionsError(ActionForgeError):
    """A stage was given options it does not take, or without one it needs."""


STAGE_MEMBERS = ("options_model", "ordered", "with_llm_defaults", "verify_batch")
ORDERED_STAGE_MEMBERS = ("prepare", "lookup_keys", "judge_in_order")


def stage_class(name: str) -> type[Stage]:
    """The stage class registered as `name`: `UnknownNameError` lists the known ones, and a
    class that lacks a `Stage` member (an `OrderedStage` one where it is ordered), or calls
    itself by another name, is a `StageDefinitionError` that says what to change."""
    found = STAGES.get(name)
    wanted = [*STAGE_MEMBERS, *(ORDERED_STAGE_MEMBERS if getattr(found, "ordered", False) else ())]
    missing = [member for member in wanted if not hasattr(found, member)]
    if missing:
        raise StageDefinitionError(
            f"stage '{name}' lacks {', '.join(missing)}; subclass verifiers.stages.StageBase, "
            "which gives every member but verify_batch a default (an ordered stage defines "
            f"{', '.join(ORDERED_STAGE_MEMBERS)} too)"
        )
    if getattr(found, "name", None) != name:
        raise StageDefinitionError(
            f"stage '{name}' calls itself {getattr(found, 'name', None)!r}; set its class "
            f"attribute name = '{name}', the name it is registered under (its verdicts and "
            "options go by that name)"
        )
    stage: type[Stage] = found
    return stage


def check_stage_names(names: Sequence[str]) -> None:
    """Raise `UnknownNameError` naming the first unknown stage and listing the known ones."""
    for name in names:
        stage_class(name)


def check_stage_options(name: str, options: Mapping[str, Any]) -> BaseModel:
    """The stage's options, validated; `StageOptionsError` names the option and what is wrong."""
    model = stage_class(name).options_model
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        raise StageOptionsError(f"stage '{name}': {option_problem(exc, model)}") from None


def check_stage_order(names: Sequence[str]) -> None:
    """Raise `StageOrderError` for a stage listed twice, generation listed after another stage,
    or dedup listed before another stage.

    Dedup (any ordered stage) compares the samples that passed every other stage: a sample it
    kept and a later stage rejected would leave its duplicates rejected for a copy that is not
    there.
    """
    repeated = sorted({stage for stage in names if names.count(stage) > 1})
    if repeated:
        raise StageOrderError(
            f"stage '{repeated[0]}' is listed more than once; list each stage once"
        )
    if GENERATION_STAGE in names and names[0] != GENERATION_STAGE:
        raise StageOrderError(
            f"stage '{GENERATION_STAGE}' must come first (it rejects failed generations, which "
            f"the other stages cannot check); move it before '{names[0]}'"
        )
    for name in names[:-1]:
        if stage_class(name).ordered:
            raise StageOrderError(
                f"stage '{name}' must come last (it compares the samples that passed every "
                f"other stage); move it after '{names[-1]}'"
            )


def build_stages(names: Sequence[str]) -> list[Stage]:
    """Instantiate the stages called `names`, in order."""
    return [stage_class(name)() for name in names]


@dataclass(frozen=True)
class PipelineResult:
    """Per sample: the verdicts of the stages it reached, and the sample as they left it.

    A sample's last verdict decides it: rejected if that stage rejected it, accepted when it
    passed every stage (or there were none, and its list is empty). `changed[i]` says whether
    a stage updated sample i (its observations, say), so that it must be stored again.
    `seconds` maps each stage that ran to the wall-clock seconds it took over the batch.
    """

    verdicts: list[list[Verdict]]
    samples: list[Sample]
    changed: list[bool]
    seconds: dict[str, float] = field(default_factory=dict)

    def survivors(self) -> list[int]:
        """The indexes of the samples every stage accepted."""
        return [i for i, judged in enumerate(self.verdicts) if all(v.accepted for v in judged)]


def run_stages(
    stages: Sequence[Stage], samples: Sequence[Sample], context: StageContext
) -> PipelineResult:
    """Run `stages` in order over `samples`; what each sample reached and how it ended."""
    current = list(samples)
    changed = [False] * len(current)
    verdicts: list[list[Verdict]] = [[] for _ in current]
    alive = list(range(len(current)))
    seconds: dict[str, float] = {}
    for stage in stages:
        if not alive:
            break
        if not getattr(stage, "judges_conversations", False):
            for index in alive:
                if current[index].is_multi_turn():
                    verdicts[index].append(not_judged(stage.name))
            alive = [i for i in alive if not current[i].is_multi_turn()]
            if not alive:
                continue
        started = time.perf_counter()
        result = stage.verify_batch([current[i] for i in alive], context)
        seconds[stage.name] = time.perf_counter() - started
        judged, updated = _unpack(stage, result, len(alive))
        for position, index in enumerate(alive):
            verdicts[index].append(judged[position])
            if updated is not None and updated[position] is not current[index]:
                current[index] = updated[position]
                changed[index] = True
        alive = [i for i, verdict in zip(alive, judged, strict=True) if verdict.accepted]
    return PipelineResult(verdicts, current, changed, seconds)


def not_judged(stage: str) -> Verdict:
    """The verdict of a stage that does not judge multi-turn samples (a plugin's, say)."""
    return Verdict.reject(
        stage,
        Reason.multi_turn_not_judged,
        f"stage '{stage}' cannot judge a conversation with follow-up turns (it would judge only "
        "the first turn; a stage that judges every turn declares judges_conversations = True); "
        "leave it out of the stages to judge this sample by the others",
    )


def _unpack(
    stage: Stage, result: StageResult | list[Verdict], count: int
) -> tuple[list[Verdict], list[Sample] | None]:
    judged, updated = (
        (result, None) if isinstance(result, list) else (result.verdicts, result.samples)
    )
    if len(judged) != count:
        raise RuntimeError(
            f"stage '{stage.name}' returned {len(judged)} verdicts for {count} samples"
        )
    if updated is not None and len(updated) != count:
        raise RuntimeError(f"stage '{stage.name}' returned {len(updated)} samples for {count}")
    return judged, updated

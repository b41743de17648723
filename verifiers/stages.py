"""Verification stages by name, and the pipeline that runs them in order over a batch.

A stage judges a batch of samples at once (an LLM judge or a de-duplicator needs the whole
batch) against a `StageContext` (the catalog's tools, the source of its Python modules, state
kept across batches) and returns one verdict per sample: a plain list of verdicts, or a
`StageResult` that also carries the samples it updated (the execution stage adds the results of
their calls). A sample leaves the pipeline at the first stage that rejects it; the stages after
that never see it, and see the samples as the stages before them left them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from llm.base import BackendConfig
from unified.errors import ActionForgeError
from unified.model import Sample, Tool
from unified.registry import Registry
from verifiers.format import STAGE as FORMAT_STAGE
from verifiers.format import FormatVerifier
from verifiers.verdict import Verdict

if TYPE_CHECKING:
    from verifiers.dedup import DedupIndex

# The STAGE names of the other stages' modules, written out so that naming the stages does not
# import what they need (datasketch, the response sampler, the LLM backends).
GENERATION_STAGE = "generation"
EXECUTION_STAGE = "execution"
SEMANTIC_STAGE = "semantic"
DEDUP_STAGE = "dedup"
PYTHON_SOURCE = "python"
"""`ToolSource.kind` of tools read from a Python module: the execution stage runs them."""


@dataclass
class StageContext:
    """What stages judge samples against.

    `tools`: the catalog's tools. `modules`: Python module sources by module name, for tools
    whose `source.callable` is `module:function`. `catalog_only`: check calls against `tools`
    even when a sample carries tools of its own (by default a sample's own tools come first).
    The dedup index lives as long as the context: verify batches in order with one context and
    later batches are de-duplicated against the earlier ones. `judge`: the LLM the semantic
    stage asks.
    """

    tools: Sequence[Tool] = ()
    modules: Mapping[str, str] = field(default_factory=dict)
    catalog_only: bool = False
    judge: BackendConfig | None = None
    _dedup: DedupIndex | None = field(default=None, repr=False)

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

    @property
    def dedup(self) -> DedupIndex:
        """The kept samples of the batches judged so far with this context."""
        if self._dedup is None:
            from verifiers.dedup import DedupIndex

            self._dedup = DedupIndex()
        return self._dedup


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

    def verify_batch(
        self, samples: Sequence[Sample], context: StageContext
    ) -> StageResult | list[Verdict]:
        """One verdict per sample, in the order of `samples` (and the updated samples)."""
        ...


class FormatStage:
    """The format stage: calls name a tool offered to the sample and fit its JSON Schema.

    A sample that carries its own tools is checked against those (it may only call what it was
    offered) unless the context says `catalog_only`; one without tools against the catalog.
    """

    name = FORMAT_STAGE

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
        EXECUTION_STAGE: "verifiers.execution:ExecutionStage",
        SEMANTIC_STAGE: "verifiers.judge:SemanticStage",
        DEDUP_STAGE: "verifiers.dedup:DedupStage",
    },
    "actionforge.stages",
)


class StageOrderError(ActionForgeError):
    """The stages of a pipeline are listed in an order that cannot run."""


def check_stage_names(names: Sequence[str]) -> None:
    """Raise `UnknownNameError` naming the first unknown stage and listing the known ones."""
    for name in names:
        STAGES.get(name)


def check_stage_order(names: Sequence[str]) -> None:
    """Raise `StageOrderError` for a stage listed twice, generation listed after another stage,
    or dedup listed before another stage.

    Dedup compares the samples that passed every other stage: a sample it kept and a later
    stage rejected would leave its duplicates rejected for a copy that is not there.
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
    if DEDUP_STAGE in names and names[-1] != DEDUP_STAGE:
        raise StageOrderError(
            f"stage '{DEDUP_STAGE}' must come last (it compares the samples that passed every "
            f"other stage); move it after '{names[-1]}'"
        )


def build_stages(names: Sequence[str]) -> list[Stage]:
    """Instantiate the stages called `names`, in order."""
    return [STAGES.get(name)() for name in names]


@dataclass(frozen=True)
class PipelineResult:
    """Per sample: the verdicts of the stages it reached, and the sample as they left it.

    A sample's last verdict decides it: rejected if that stage rejected it, accepted when it
    passed every stage (or there were none, and its list is empty). `changed[i]` says whether
    a stage updated sample i (its observations, say), so that it must be stored again.
    """

    verdicts: list[list[Verdict]]
    samples: list[Sample]
    changed: list[bool]

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
    for stage in stages:
        if not alive:
            break
        result = stage.verify_batch([current[i] for i in alive], context)
        judged, updated = _unpack(stage, result, len(alive))
        for position, index in enumerate(alive):
            verdicts[index].append(judged[position])
            if updated is not None and updated[position] is not current[index]:
                current[index] = updated[position]
                changed[index] = True
        alive = [i for i, verdict in zip(alive, judged, strict=True) if verdict.accepted]
    return PipelineResult(verdicts, current, changed)


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

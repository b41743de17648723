"""The template generator: samples of every query style from a catalog's tools, without an LLM.

Arguments come from each parameter's JSON Schema (`unified.values.schema_values`), queries from the
Jinja templates (`generators.template.phrasebook`). Sample i of a request depends only on the
tools, the request's seed, styles and options, and i: its random generator is seeded from (seed, i).
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from generators.base import (
    GenerationRequest,
    GeneratorBase,
    derived_seed,
    pick_style,
    style_weights,
)
from generators.drafting.follow_ups import FollowUpIndex
from generators.drafting.phrasing import Ask
from generators.drafting.sample_tools import CatalogTools, CatalogToolsCache, ToolCopies
from generators.drafting.styles import STYLES as SINGLE_TURN_STYLES
from generators.drafting.styles import Draft, make_draft
from generators.errors import GenerationError
from generators.template.phrasebook import PhraseBook, bundled_templates_dir
from generators.tool_api import ToolApiFactory
from unified.model import QueryStyle, Sample, SampleMeta, Step, Tool, ToolCall, Turn

GENERATOR_NAME = "template"
STYLES = (*SINGLE_TURN_STYLES, QueryStyle.multi_turn)
"""The styles the template generator makes, in the order that turns weights into a choice."""
OPTIONS = ("templates_dir", "created")
"""Request options the template generator reads; any other option is refused."""


class TemplateGenerator(GeneratorBase):
    """Makes samples of every query style from tools with Faker-sampled arguments and Jinja
    templates; deterministic for a request's seed.

    `templates_dir` (here or as the request option of that name) points at a directory of one's
    own templates instead of the bundled ones. `meta.created` is the time `generate` was called,
    or the request option `created` (an ISO date-time) when samples must be identical to the
    byte; every other field depends only on the tools, the request and the sample's index.

    `tool_api` (or `use_tool_api`) makes the mock API of a catalog's tools: the `multi_turn`
    style asks it for the results of a conversation's calls, so that a follow-up can take a
    value out of one ("delete the one you just created"). The job engine gives every worker's
    generator the catalog's mock API; without one, follow-ups only ask again with another value.
    """

    name = "template generator"

    def __init__(
        self, templates_dir: str | Path | None = None, tool_api: ToolApiFactory | None = None
    ) -> None:
        self._default_dir = Path(templates_dir) if templates_dir else bundled_templates_dir()
        self._books: dict[Path, PhraseBook] = {}
        self._catalogs = CatalogToolsCache()
        self._tool_api = tool_api
        self._follow_ups: weakref.WeakKeyDictionary[CatalogTools, FollowUpIndex] = (
            weakref.WeakKeyDictionary()
        )
        self.phrasebook(self._default_dir)

    def use_tool_api(self, tool_api: ToolApiFactory) -> None:
        """Ask `tool_api`'s API for the results of conversations' calls from now on."""
        self._tool_api = tool_api
        self._follow_ups = weakref.WeakKeyDictionary()

    def phrasebook(self, directory: Path) -> PhraseBook:
        """The loaded templates of `directory`, loaded once per generator."""
        book = self._books.get(directory)
        if book is None:
            book = self._books[directory] = PhraseBook(directory)
        return book

    def generate(self, tools: Sequence[Tool], request: GenerationRequest) -> list[Sample]:
        """`request.n` samples with ids `f"{request.id_prefix}{i}"`, styles drawn by weight."""
        book, created = self._read_options(request)
        weights = style_weights(request, STYLES, "template generator")
        catalog = self._catalog(tools)
        multi_turn = any(style is QueryStyle.multi_turn for style, _ in weights)
        index = self._follow_up_index(catalog, tools) if multi_turn else None
        copies = ToolCopies()
        return [
            self._sample(i, catalog, book, weights, request, created, index, copies)
            for i in range(request.n)
        ]

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> datetime | None:
        """Refuse unknown options and a `created` that is not a date-time (`GenerationError`);
        the `created` moment, if given. Files named by options are checked where they are
        used: a worker may see other files than the API that takes the job."""
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise GenerationError(
                f"template generator: unknown option '{unknown[0]}'; "
                f"known options: {', '.join(OPTIONS)}"
            )
        created = options.get("created")
        if created is None:
            return None
        try:
            moment = created if isinstance(created, datetime) else datetime.fromisoformat(created)
        except (TypeError, ValueError):
            raise GenerationError(
                f"template generator: option 'created' is {created!r}, not an ISO 8601 "
                "date-time; give one like '2026-01-31T12:00:00+00:00'"
            ) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def _read_options(self, request: GenerationRequest) -> tuple[PhraseBook, datetime]:
        created = self.check_options(request.options)
        directory = request.options.get("templates_dir")
        book = self.phrasebook(Path(directory)) if directory else self.phrasebook(self._default_dir)
        return book, created or datetime.now(UTC)

    def _follow_up_index(self, catalog: CatalogTools, tools: Sequence[Tool]) -> FollowUpIndex:
        index = self._follow_ups.get(catalog)
        if index is None:
            api = self._tool_api(tools) if self._tool_api is not None else None
            index = self._follow_ups[catalog] = FollowUpIndex(catalog, api)
        return index

    def _catalog(self, tools: Sequence[Tool]) -> CatalogTools:
        if not tools:
            raise GenerationError(
                "template generator: the catalog has no tools; load a catalog with at least one"
            )
        return self._catalogs.get(tools)

    def _sample(
        self,
        index: int,
        catalog: CatalogTools,
        book: PhraseBook,
        weights: list[tuple[QueryStyle, float]],
        request: GenerationRequest,
        created: datetime,
        follow_ups: FollowUpIndex | None,
        copies: ToolCopies,
    ) -> Sample:
        rng = random.Random(derived_seed(request.seed, index))
        requested = pick_style(weights, rng)
        draft = make_draft(requested, catalog, rng, follow_ups)
        turns: list[Turn] = []
        if draft.style is QueryStyle.multi_turn:
            query, steps, turns = _conversation(draft, book, rng)
        elif draft.style is QueryStyle.irrelevance:
            source = draft.phrased_from
            ask = source.ask(draft.phrased_arguments, {}) if source is not None else None
            query = book.irrelevant_query(ask, rng)
            steps = [Step(answer=book.refusal([t.tool.name for t in draft.shown], rng))]
        else:
            asks = _asks(draft)
            query = book.query(draft.style, asks, rng)
            calls = [ToolCall(name=tool.tool.name, arguments=args) for tool, args in draft.calls]
            steps = [Step(tool_calls=calls)]
        extra: dict[str, Any] = {"index": index, "requested_style": requested.value}
        if draft.style is QueryStyle.irrelevance:
            phrased = draft.phrased_from
            extra["phrased_from"] = phrased.tool.name if phrased is not None else None
        if draft.follow_ups:
            extra["follow_ups"] = [
                {
                    "kind": follow_up.kind,
                    "tool": follow_up.call.tool.tool.name,
                    "argument": follow_up.argument,
                    **({"pick": follow_up.pick.how} if follow_up.pick is not None else {}),
                }
                for follow_up in draft.follow_ups
            ]
        first = draft.calls[0][0] if draft.calls else draft.phrased_from
        document = first.document if first is not None else None
        return Sample(
            id=f"{request.id_prefix}{index}",
            task_instruction=book.task_instruction,
            tools=[copies.of(tool) for tool in draft.shown],
            format_instruction=book.format_instruction,
            query=query,
            steps=steps,
            turns=turns,
            meta=SampleMeta(
                style=draft.style,
                source=f"{GENERATOR_NAME}:{document}" if document else GENERATOR_NAME,
                generator=GENERATOR_NAME,
                seed=request.seed,
                created=created,
                extra=extra,
            ),
        )


def _asks(draft: Draft) -> list[Ask]:
    """One ask per call in call order, except that the calls of a tool whose parallel calls
    vary one argument make one ask, whose clause lists every value."""
    asks: list[Ask] = []
    for tool, arguments in draft.calls:
        axis = draft.axes.get(tool.tool.name, {})
        if axis and any(ask.tool == tool.tool.name for ask in asks):
            continue
        asks.append(tool.ask(arguments, axis))
    return asks


def _conversation(
    draft: Draft, book: PhraseBook, rng: random.Random
) -> tuple[str, list[Step], list[Turn]]:
    """The first turn's query and steps and the follow-up turns of a multi_turn draft. Every
    turn but the last carries its call's result (where the tool API gave one) and an answer
    before the user speaks again; the last turn is its call, as a single-turn sample is."""
    tool, arguments = draft.calls[0]
    query = book.query(QueryStyle.simple, [tool.ask(arguments, {})], rng)
    said = [(query, tool.tool.name, arguments, draft.results)]
    for follow_up in draft.follow_ups:
        call = follow_up.call
        results = [call.result] if call.answered else None
        message = book.follow_up(follow_up.phrasing(), rng)
        said.append((message, call.tool.tool.name, call.arguments, results))
    turns: list[Turn] = []
    for number, (message, name, call_arguments, results) in enumerate(said, 1):
        tool_call = ToolCall(name=name, arguments=call_arguments)
        if number == len(said):
            turns.append(Turn(query=message, steps=[Step(tool_calls=[tool_call])]))
            continue
        items = len(results[0]) if results and isinstance(results[0], list) else None
        steps = [
            Step(tool_calls=[tool_call], results=list(results or [])),
            Step(answer=book.turn_answer([name], items, rng)),
        ]
        turns.append(Turn(query=message, steps=steps))
    return turns[0].query, turns[0].steps, turns[1:]

"""The query stage: a sample's query reads as a request, before anything checks its calls.

Rejects with `query_malformed`, the detail naming the rule: `too_short` (fewer words than
`min_words`), `no_words` (no word of two letters or more), `code_like` (JSON, a regular
expression, code: mostly symbols, or braces or brackets around little text), `function_name`
(an identifier such as a tool's name instead of a request), `repeated_sentence` (sentences
written again make up half the query or more), `wrong_language` (with the `language` option:
the query reads as another known language).
Needs no LLM; never raises on model output.
"""

from __future__ import annotations

import re
import unicodedata
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from unified.constraints import language_of
from unified.model import Sample
from verifiers.query_values import normalise
from verifiers.stages import SampleCheckStage, StageContext
from verifiers.verdict import Reason

STAGE = "query"
SYMBOL_SHARE = 0.3
"""Share of non-letter, non-digit, non-space characters above which a query reads as code."""
_WORD = re.compile(r"[^\W\d_]{2,}")
_ANY_WORD = re.compile(r"[^\W_]+")
_IDENTIFIER = re.compile(r"^[A-Za-z_][\w.]*(?:\(.*\))?$")
_CODE_NAME = re.compile(r"[_.(]|[a-z][A-Z]")
"""What makes one token a name in code: underscores, dots, calls, camelCase."""
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class QueryOptions(BaseModel):
    """The query stage's options."""

    model_config = ConfigDict(extra="forbid")

    min_words: int = Field(3, ge=1, description="the fewest words a query may have")
    language: str | None = Field(
        None,
        description="the language queries must read as (English, French, German, Spanish, "
        "Italian, Portuguese); unset: any",
    )


def malformed(query: str, options: QueryOptions) -> str | None:
    """The rule the query breaks and how, or None when it reads as a request."""
    stripped = query.strip()
    words = _WORD.findall(stripped)
    if not words:
        return f"no_words: {_shown(stripped)} has no word"
    if _IDENTIFIER.match(stripped) and _CODE_NAME.search(stripped):
        return f"function_name: {_shown(stripped)} is an identifier, not a request"
    symbols = sum(1 for ch in stripped if unicodedata.category(ch)[0] in "PS")
    letters = sum(1 for ch in stripped if ch.isalpha())
    wrapped = stripped[:1] in "{[" and stripped[-1:] in "}]"
    if symbols > SYMBOL_SHARE * len(stripped) or (wrapped and letters < 0.6 * len(stripped)):
        return f"code_like: {_shown(stripped)} reads as code or data, not a request"
    counted = len(_ANY_WORD.findall(stripped))
    if counted < options.min_words:
        return f"too_short: {counted} word(s), at least {options.min_words}"
    sentences = [normalise(s) for s in _SENTENCE_END.split(stripped) if len(s.split()) >= 3]
    repeats = sum(sentences.count(s) - 1 for s in set(sentences))
    if repeats and 2 * repeats >= len(sentences):
        repeated = next(s for s in sentences if sentences.count(s) > 1)
        return f"repeated_sentence: {_shown(repeated)} makes up half the query or more"
    if options.language is not None:
        language = language_of(stripped)
        if language is not None and language.casefold() != options.language.casefold():
            return f"wrong_language: reads as {language}, not {options.language}"
    return None


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


class QueryStage(SampleCheckStage):
    """Rejects samples whose query does not read as a request (`query_malformed`)."""

    name = STAGE
    options_model: ClassVar[type[BaseModel]] = QueryOptions

    judges_conversations = True

    def problem(self, sample: Sample, context: StageContext) -> tuple[str, str] | None:
        options = context.options_for(self)
        rule = malformed(sample.query, options)
        if rule is not None:
            return Reason.query_malformed, rule
        for number, turn in enumerate(sample.turns, 2):
            # An empty follow-up turn says nothing to judge (BFCL's turn that hands the model
            # a held-out function has no user text).
            rule = malformed(turn.query, options) if turn.query.strip() else None
            if rule is not None:
                return Reason.query_malformed, f"turn {number}: {rule}"
        return None

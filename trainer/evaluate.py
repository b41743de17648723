"""How well a model calls tools: parse its outputs, score them against reference samples.

The model answers each sample's prompt (its `trainer.render` conversation up to the first
assistant turn); `score` compares the calls parsed from each answer with the calls of the
sample's first assistant turn:

- tool-name accuracy: the same tool names, as many times each (samples that expect calls);
- exact-call accuracy: right by BFCL's AST rules (`trainer.bfcl_rules`) against the reference
  calls' acceptable values (`ToolCall.acceptable`, which the BFCL importer fills from the
  possible answers; a generated reference accepts its one answer): any acceptable value,
  strings without case and punctuation, optional arguments left out where allowed, types as
  declared (an integer for a number, never a float for an integer), parallel calls in any
  order; a reference whose tools the rules cannot read compares the same names and argument
  values after JSON normalisation, in any order;
- irrelevance accuracy: no call where none fits (samples whose first turn calls nothing);
- format pass rate: the answer has calls and every one names a known tool with arguments that
  satisfy its JSON Schema (`verifiers.FormatVerifier`; samples that expect calls);
- accuracy: exact calls or correct refusals over all samples.

A multi-turn sample (a conversation) is judged turn by turn: for turn k the model is given the
reference's conversation up to turn k (its earlier turns with their calls, results and answers,
then turn k's user message) and its answer is compared with the calls of the assistant's first
message in turn k, by the rules above. Every turn counts in the figures above as one sample
would (`samples` and the other tallies count judged answers: one per single-turn sample, one
per turn of a conversation), and two figures cover conversations only:

- turn accuracy: right turns (exact calls or correct refusals) over the conversations' turns;
- conversation accuracy: conversations with every turn right over conversations.

Both are None for a group without a multi-turn sample, so a single-turn set's report is what it
was before conversations were judged.

Each overall and per query style (`sample.meta.style`). `score` is pure; `generate` runs the
model (greedy, batched); `evaluate` does both; `compare` lines two reports up.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from trainer.bfcl_rules import BfclInputError, category_of, check
from trainer.render import expected_calls, render
from unified.acceptable import bfcl_possible_answer
from unified.model import QueryStyle, Sample, Tool, ToolCall
from verifiers.format import FormatVerifier

OVERALL = "overall"
UNKNOWN_STYLE = "unknown"
METRICS = (
    "accuracy",
    "tool_name_accuracy",
    "exact_call_accuracy",
    "irrelevance_accuracy",
    "format_pass_rate",
    "turn_accuracy",
    "conversation_accuracy",
)
CONVERSATION_METRICS = ("turn_accuracy", "conversation_accuracy")
"""The metrics of `METRICS` computed on multi-turn samples only (None without one)."""
_STYLE_ORDER = [style.value for style in QueryStyle]
_JSON_START = re.compile(r"[\[{]")
ProgressCallback = Callable[[int, int], None]
"""Called after every generated batch with (prompts done, prompts in all): one prompt per
single-turn sample, one per turn of a conversation."""


# --- parsing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedOutput:
    """The calls read from a model's answer; `error` is set when the answer looks like an
    attempted call that could not be read (it then counts as no call and no refusal)."""

    calls: list[ToolCall]
    error: str | None = None


def parse_calls(text: str) -> ParsedOutput:
    """The tool calls in `text`, with any text around them: the first JSON list of calls, or
    else every JSON call object in it, in order (chat templates write one `<tool_call>` block
    per call). Reads `{"name", "arguments"}` (or `"parameters"`) objects, OpenAI's
    `{"function": {...}}` and `{"tool_calls": [...]}`; arguments may be JSON text. An answer
    with no JSON call is a plain-text answer: no calls."""
    decoder = json.JSONDecoder()
    position = 0
    found: list[ToolCall] = []
    while (match := _JSON_START.search(text, position)) is not None:
        try:
            value, end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            position = match.start() + 1
            continue
        calls = _as_calls(value)
        if calls is not None:
            if not found and _is_call_list(value):
                return ParsedOutput(calls)
            found += calls
        position = end
    if found:
        return ParsedOutput(found)
    stripped = text.strip().removeprefix("```json").removeprefix("```").lstrip()
    if '"name"' in text or stripped.startswith(("[", "{")):
        return ParsedOutput([], "no JSON tool call could be read from the answer")
    return ParsedOutput([])


def _is_call_list(value: Any) -> bool:
    return isinstance(value, list) or (
        isinstance(value, dict) and isinstance(value.get("tool_calls"), list)
    )


def _as_calls(value: Any) -> list[ToolCall] | None:
    if isinstance(value, list):
        calls = [_as_call(item) for item in value]
        if any(call is None for call in calls):
            return None
        return [call for call in calls if call is not None]
    if isinstance(value, dict):
        if isinstance(value.get("tool_calls"), list):
            return _as_calls(value["tool_calls"])
        call = _as_call(value)
        return [call] if call is not None else None
    return None


def _as_call(item: Any) -> ToolCall | None:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("function"), dict):
        item = item["function"]
    name = item.get("name")
    if not isinstance(name, str) or not name:
        return None
    arguments = item.get("arguments", item.get("parameters", {}))
    if not isinstance(arguments, dict | str):
        arguments = orjson.dumps(arguments).decode()  # kept so the format check can reject it
    return ToolCall(name=name, arguments=arguments)


# --- scoring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    """How one answer fares against its reference sample."""

    style: str
    expects_call: bool
    unparseable: bool
    tool_names_match: bool
    exact_match: bool
    format_pass: bool
    correct_refusal: bool

    @property
    def right(self) -> bool:
        """Exact calls where calls are expected, a correct refusal where none are."""
        return self.exact_match if self.expects_call else self.correct_refusal


@dataclass
class Counts:
    """Tallies of one group of samples, and the rates they give (None when a rate has no
    samples to be computed on). `samples` and the tallies after it count judged answers (a
    conversation gives one per turn); `conversations` counts multi-turn samples, with their
    right turns and the conversations whose every turn is right."""

    samples: int = 0
    call_samples: int = 0
    tool_name_correct: int = 0
    exact_correct: int = 0
    format_pass: int = 0
    irrelevance_samples: int = 0
    irrelevance_correct: int = 0
    unparseable: int = 0
    conversations: int = 0
    conversation_turns: int = 0
    conversation_turns_correct: int = 0
    conversations_correct: int = 0

    def add_sample(self, judgements: Sequence[Judgement]) -> None:
        """One sample's judged answers: one for a single-turn sample, one per turn of a
        conversation."""
        for judgement in judgements:
            self.add(judgement)
        if len(judgements) > 1:
            self.conversations += 1
            self.conversation_turns += len(judgements)
            self.conversation_turns_correct += sum(j.right for j in judgements)
            self.conversations_correct += all(j.right for j in judgements)

    def add(self, judgement: Judgement) -> None:
        """One judged answer (a single-turn sample's, or one turn's)."""
        self.samples += 1
        self.unparseable += judgement.unparseable
        if judgement.expects_call:
            self.call_samples += 1
            self.tool_name_correct += judgement.tool_names_match
            self.exact_correct += judgement.exact_match
            self.format_pass += judgement.format_pass
        else:
            self.irrelevance_samples += 1
            self.irrelevance_correct += judgement.correct_refusal

    @property
    def accuracy(self) -> float | None:
        return _rate(self.exact_correct + self.irrelevance_correct, self.samples)

    @property
    def tool_name_accuracy(self) -> float | None:
        return _rate(self.tool_name_correct, self.call_samples)

    @property
    def exact_call_accuracy(self) -> float | None:
        return _rate(self.exact_correct, self.call_samples)

    @property
    def irrelevance_accuracy(self) -> float | None:
        return _rate(self.irrelevance_correct, self.irrelevance_samples)

    @property
    def format_pass_rate(self) -> float | None:
        return _rate(self.format_pass, self.call_samples)

    @property
    def turn_accuracy(self) -> float | None:
        return _rate(self.conversation_turns_correct, self.conversation_turns)

    @property
    def conversation_accuracy(self) -> float | None:
        return _rate(self.conversations_correct, self.conversations)

    def rates(self) -> dict[str, float | None]:
        """Every metric of `METRICS` by name."""
        return {name: getattr(self, name) for name in METRICS}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), **self.rates()}


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class EvalReport:
    """Counts and rates overall and per query style."""

    overall: Counts = field(default_factory=Counts)
    by_style: dict[str, Counts] = field(default_factory=dict)

    def groups(self) -> list[tuple[str, Counts]]:
        """("overall", counts) then each style in QueryStyle order."""
        styles = sorted(self.by_style, key=_style_rank)
        return [(OVERALL, self.overall), *((s, self.by_style[s]) for s in styles)]

    def to_dict(self) -> dict[str, Any]:
        return {
            OVERALL: self.overall.to_dict(),
            "by_style": {style: counts.to_dict() for style, counts in self.groups()[1:]},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalReport:
        """The report `to_dict` wrote (rates are recomputed from the counts)."""
        names = {f for f in Counts.__dataclass_fields__}

        def counts(values: dict[str, Any]) -> Counts:
            return Counts(**{k: int(v) for k, v in values.items() if k in names})

        return cls(
            overall=counts(data[OVERALL]),
            by_style={style: counts(v) for style, v in data.get("by_style", {}).items()},
        )


def _style_rank(style: str) -> tuple[int, str]:
    return (_STYLE_ORDER.index(style) if style in _STYLE_ORDER else len(_STYLE_ORDER), style)


Answer = str | ParsedOutput
"""A model's answer: its text, or the calls already parsed from it."""


def judge(answer: Answer, reference: Sample, verifier: FormatVerifier, turn: int = 0) -> Judgement:
    """How `answer` fares against user turn `turn` (0: the first) of `reference`."""
    parsed = parse_calls(answer) if isinstance(answer, str) else answer
    expected = expected_calls(reference, turn)
    called = bool(parsed.calls)
    tools: dict[str, Tool] = {tool.name: tool for tool in reference.tools}
    return Judgement(
        style=reference.meta.style.value if reference.meta.style else UNKNOWN_STYLE,
        expects_call=bool(expected),
        unparseable=parsed.error is not None,
        tool_names_match=Counter(c.name for c in parsed.calls) == Counter(c.name for c in expected),
        exact_match=_matches(parsed.calls, expected, reference),
        format_pass=called
        and parsed.error is None
        and all(verifier.verify_call(call, tools) is None for call in parsed.calls),
        correct_refusal=not called and parsed.error is None,
    )


def score(answers: Sequence[Answer | Sequence[Answer]], references: Sequence[Sample]) -> EvalReport:
    """The report of `answers[i]` against `references[i]` for every i: one answer for a
    single-turn reference, a list of one answer per turn for a multi-turn one."""
    if len(answers) != len(references):
        raise ValueError(f"{len(answers)} answers for {len(references)} reference samples")
    verifier = FormatVerifier()
    report = EvalReport()
    for answer, reference in zip(answers, references, strict=True):
        turns = _turn_answers(answer, reference)
        judgements = [judge(a, reference, verifier, turn) for turn, a in enumerate(turns)]
        report.overall.add_sample(judgements)
        report.by_style.setdefault(judgements[0].style, Counts()).add_sample(judgements)
    return report


def _turn_answers(answer: Answer | Sequence[Answer], reference: Sample) -> list[Answer]:
    turns = 1 + len(reference.turns)
    given = [answer] if isinstance(answer, str | ParsedOutput) else list(answer)
    if len(given) != turns:
        raise ValueError(
            f"{len(given)} answers for reference sample {reference.id!r} of {turns} turns; "
            "give one answer per turn"
        )
    return given


def _matches(calls: Sequence[ToolCall], expected: Sequence[ToolCall], reference: Sample) -> bool:
    """Whether the calls answer the reference, by BFCL's rules against the reference calls'
    acceptable values (each call's `acceptable`, else its one answer): strings without case and
    punctuation, optional arguments left out where allowed, parallel calls in any order, types
    as the tools declare them. A question the rules cannot read (a tool type they do not know)
    is compared with the reference's calls, in any order, after JSON normalisation."""
    functions = [tool.openai()["function"] for tool in reference.tools]
    possible = bfcl_possible_answer(expected)
    category = category_of(reference.id, possible, functions)
    try:
        return check(category, functions, [(c.name, c.arguments) for c in calls], possible).valid
    except BfclInputError:
        return _call_multiset(calls) == _call_multiset(expected)


def _call_multiset(calls: Iterable[ToolCall]) -> Counter[tuple[str, str]]:
    return Counter((call.name, _canonical_arguments(call.arguments)) for call in calls)


def _canonical_arguments(arguments: dict[str, Any] | str) -> str:
    if isinstance(arguments, str):  # not a JSON object: only the identical text matches
        return "raw:" + arguments
    return orjson.dumps(_normalise(arguments), option=orjson.OPT_SORT_KEYS).decode()


def _normalise(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    return value


# --- comparing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delta:
    """One metric of one group in two reports."""

    group: str
    metric: str
    before: float | None
    after: float | None

    @property
    def change(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before


def compare(before: EvalReport, after: EvalReport) -> list[Delta]:
    """Every metric of every group in either report, before and after."""
    groups_before = dict(before.groups())
    groups_after = dict(after.groups())
    names = [name for name, _ in before.groups()]
    names += [name for name, _ in after.groups() if name not in groups_before]
    names = [OVERALL, *sorted((n for n in names if n != OVERALL), key=_style_rank)]
    empty = Counts()
    return [
        Delta(
            group,
            metric,
            getattr(groups_before.get(group, empty), metric),
            getattr(groups_after.get(group, empty), metric),
        )
        for group in names
        for metric in METRICS
    ]


# --- running the model -----------------------------------------------------------------------


@dataclass
class Evaluation:
    """A model's answers to samples and their report."""

    report: EvalReport
    answers: list[str | list[str]]
    """One text per single-turn sample, a list of one text per turn per multi-turn sample."""
    seconds: float


def generate(
    model: str,
    samples: Sequence[Sample],
    adapter: Path | None = None,
    *,
    batch_size: int = 8,
    max_new_tokens: int = 256,
    progress: ProgressCallback | None = None,
) -> list[str | list[str]]:
    """The model's answer to each sample's prompt (a list of answers, one per turn, for a
    multi-turn sample: each asked with the reference's earlier turns before it): greedy
    decoding, batched, with the base model `model` and the LoRA adapter in `adapter` when given
    (bf16 on a GPU, float32 on the CPU)."""
    import torch
    from transformers import GenerationConfig

    from trainer.encode import ChatEncoder
    from trainer.modeling import load_adapter, load_base_model, load_tokenizer, placement

    tokenizer = load_tokenizer(model)
    encoder = ChatEncoder(tokenizer)
    where = placement()
    net: Any = load_base_model(model, where)
    if adapter is not None:  # merged into the base weights: generation at the base model's speed
        net = load_adapter(net, adapter, trainable=False).merge_and_unload()
    net.eval()
    pad_id = int(tokenizer.pad_token_id)
    settings = GenerationConfig(
        do_sample=False,
        max_new_tokens=max_new_tokens,
        pad_token_id=pad_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    cases = [(index, turn) for index, s in enumerate(samples) for turn in range(1 + len(s.turns))]
    conversations = [render(sample) for sample in samples]
    prompts = [encoder.prompt_ids(conversations[index], turn) for index, turn in cases]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # less padding
    answers = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        width = max(len(prompts[i]) for i in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):  # left padding: every prompt ends where generation starts
            ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
            attention[row, width - len(prompts[i]) :] = 1
        with torch.no_grad():
            out = net.generate(
                input_ids=ids.to(where.device),
                attention_mask=attention.to(where.device),
                generation_config=settings,
            )
        texts = tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
        for i, text in zip(batch, texts, strict=True):
            answers[i] = text
        if progress is not None:
            progress(min(start + batch_size, len(order)), len(order))
    by_sample: list[list[str]] = [[] for _ in samples]
    for (index, _), answer in zip(cases, answers, strict=True):
        by_sample[index].append(answer)
    return [texts if len(texts) > 1 else texts[0] for texts in by_sample]


def evaluate(
    model: str,
    samples: Sequence[Sample],
    adapter: Path | None = None,
    *,
    batch_size: int = 8,
    max_new_tokens: int = 256,
    progress: ProgressCallback | None = None,
) -> Evaluation:
    """Generate the model's answers to `samples` and score them."""
    started = time.perf_counter()
    answers = generate(
        model,
        samples,
        adapter,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        progress=progress,
    )
    return Evaluation(score(answers, samples), answers, time.perf_counter() - started)

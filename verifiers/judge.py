"""The semantic judge: an LLM reads a sample's query, calls and results and says whether the
answer is right (APIGen's semantic check), as structured JSON `{"reason", "pass"}`: its
reasoning first, then the verdict; anything else is parsed as unparseable.

The prompt is a Jinja template (bundled `templates/judge/semantic.j2`, or a user's own file given
by path) that may use only the variables listed in `JUDGE_VARIABLES` and the `json` filter; a
template that uses another variable is refused when it is loaded.

A conversation (a sample with follow-up turns) is judged as a whole: `turns` lists every turn,
the first included, each `{query, calls, results, answer}` (the user's message, the calls that
answer it, their results, the turn's last answer), and the bundled prompt shows them in order
and asks whether each turn's calls answer that turn given what came before. A single-turn sample
gets the prompt it always got, byte for byte (`turns` holds its one turn). A user's template
that does not use `turns` cannot show a conversation: such a sample gets `multi_turn_not_judged`
naming the template, rather than a verdict on its first turn. The answer is constrained to
`VERDICT_SCHEMA` through the backend's structured outputs, and parsed defensively all the same: a
judge that answers something else, or runs out of tokens, rejects the sample with
`judge_unparseable` rather than passing it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar

import jinja2
from jinja2 import meta
from pydantic import BaseModel, ConfigDict, Field

from llm.base import BackendConfig, LLMBackend, LlmDefaults, LLMRequest, LLMResult
from unified.errors import ActionForgeError
from unified.model import Sample, Tool, ToolCall, Turn
from verifiers.stages import StageBase, StageContext
from verifiers.verdict import Reason, Verdict

STAGE = "semantic"
JUDGE_VARIABLES = frozenset({"query", "tools", "calls", "results", "answer", "style", "turns"})
VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        # The reasoning first: structured outputs write properties in this order, so the judge
        # reasons before it decides.
        "reason": {"type": "string", "maxLength": 500},
        "pass": {"type": "boolean"},
    },
    "required": ["reason", "pass"],
    "additionalProperties": False,
}


class JudgeTemplateError(ActionForgeError):
    """The judge's prompt template cannot be used; the message names the file and the fix."""


def bundled_judge_template() -> Path:
    """The judge prompt that ships with ActionForge."""
    return Path(str(files("templates").joinpath("judge", "semantic.j2")))


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def load_judge_template(path: Path | None = None) -> jinja2.Template:
    """Compile the judge prompt at `path` (default: the bundled one), refusing unknown variables."""
    return judge_template_and_variables(path)[0]


def judge_template_and_variables(
    path: Path | None = None,
) -> tuple[jinja2.Template, frozenset[str]]:
    """The judge prompt at `path` (default: the bundled one), compiled, and the variables it
    uses; unknown variables are refused."""
    path = path or bundled_judge_template()
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JudgeTemplateError(f"{path}: cannot read the judge template ({exc})") from None
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    # Not Jinja's `tojson`: that one sorts keys and HTML-escapes quotes, which the model would
    # read as part of the values.
    env.filters["json"] = _json_text
    try:
        used = frozenset(meta.find_undeclared_variables(env.parse(source)))
        unknown = sorted(used - JUDGE_VARIABLES)
        template = env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise JudgeTemplateError(
            f"{path}: line {exc.lineno}: {exc.message}; fix the Jinja syntax there"
        ) from None
    if unknown:
        raise JudgeTemplateError(
            f"{path}: variable '{unknown[0]}' is not given to the judge template; use only "
            f"{', '.join(sorted(JUDGE_VARIABLES))}"
        )
    return template, used


def judge_prompt(
    template: jinja2.Template, sample: Sample, tools: Sequence[Tool] | None = None
) -> str:
    """The judge's user message for one sample; `tools` default to the sample's own."""
    return template.render(
        query=sample.query,
        tools=[tool.openai()["function"] for tool in (sample.tools if tools is None else tools)],
        calls=[_shown_call(call) for call in sample.tool_calls()],
        results=[result for step in sample.all_steps() for result in step.results],
        answer=sample.final_answer(),
        style=sample.meta.style.value if sample.meta.style else None,
        turns=[_shown_turn(turn) for turn in sample.conversation()],
    ).strip()


def _shown_call(call: ToolCall) -> dict[str, Any]:
    return {"name": call.name, "arguments": call.arguments}


def _shown_turn(turn: Turn) -> dict[str, Any]:
    """One turn as the template reads it: the user's message, its calls, their results, and
    the turn's last answer."""
    answers = [step.answer for step in turn.steps if step.answer is not None]
    return {
        "query": turn.query,
        "calls": [_shown_call(call) for step in turn.steps for call in step.tool_calls],
        "results": [result for step in turn.steps for result in step.results],
        "answer": answers[-1] if answers else None,
    }


def verdict_from_answer(result: LLMResult) -> Verdict:
    """Turn the judge's answer into a verdict; anything but a clean `{pass, reason}` rejects."""
    if result.finish_reason != "stop":
        why = result.error or f"the judge stopped with finish reason '{result.finish_reason}'"
        return Verdict.reject(STAGE, Reason.judge_unparseable, why)
    try:
        # strict=False: structured-output grammars let raw control characters into strings.
        answer = json.loads(result.text, strict=False)
    except ValueError:
        return Verdict.reject(
            STAGE, Reason.judge_unparseable, f"the judge's answer is not JSON: {result.text[:120]}"
        )
    if (
        not isinstance(answer, dict)
        or set(answer) != {"reason", "pass"}
        or not isinstance(answer["pass"], bool)
        or not isinstance(answer["reason"], str)
    ):
        return Verdict.reject(
            STAGE,
            Reason.judge_unparseable,
            'the judge\'s answer is not {"reason": text, "pass": true or false}: '
            f"{result.text[:120]}",
        )
    reason = answer["reason"].strip()
    if answer["pass"]:
        return Verdict(accepted=True, stage=STAGE, detail=reason[:400] or None)
    return Verdict.reject(STAGE, Reason.judge_rejected, reason or "the judge gave no reason")


VOTE_TEMPERATURE = 0.7
"""The temperature of a judge that votes: k answers at temperature 0 would be one answer k times."""


class SemanticJudge:
    """Judges batches of samples through one LLM backend: one request per sample, or `votes`
    requests (seeds 0..votes-1) and the majority's verdict."""

    def __init__(
        self,
        backend: LLMBackend,
        template_path: Path | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        votes: int = 1,
    ) -> None:
        self.backend = backend
        self.template, used = judge_template_and_variables(template_path)
        self.template_name = str(template_path or "the bundled judge template")
        self.reads_turns = "turns" in used
        self.max_tokens = max_tokens
        self.votes = max(1, votes)
        self.temperature = VOTE_TEMPERATURE if self.votes > 1 and not temperature else temperature

    def requests(
        self, samples: Sequence[Sample], context: StageContext | None = None
    ) -> list[LLMRequest]:
        """The judge's requests for `samples`, in order; tools from `context` when given."""
        return [
            LLMRequest(
                messages=[
                    {
                        "role": "user",
                        "content": judge_prompt(
                            self.template,
                            sample,
                            context.tools_for(sample) if context is not None else None,
                        ),
                    }
                ],
                json_schema=VERDICT_SCHEMA,
                max_tokens=self.max_tokens,
                temperature=self.temperature,
                seed=vote,
            )
            for sample in samples
            for vote in range(self.votes)
        ]

    def judge(
        self, samples: Sequence[Sample], context: StageContext | None = None
    ) -> list[Verdict]:
        """One verdict per sample, in order; a batch goes to the backend as one call.

        Raises the backend's `BackendUnavailable` when the LLM cannot be reached: the job
        fails with that reason (the backend has retried already).
        """
        if not samples:
            return []
        judged = [s for s in samples if self.reads_turns or not s.is_multi_turn()]
        results = self.backend.generate(self.requests(judged, context)) if judged else []
        verdicts = [verdict_from_answer(result) for result in results]
        decided = iter(
            _majority(verdicts[start : start + self.votes])
            for start in range(0, len(verdicts), self.votes)
        )
        return [
            next(decided) if self.reads_turns or not sample.is_multi_turn() else self._unread()
            for sample in samples
        ]

    def _unread(self) -> Verdict:
        return Verdict.reject(
            STAGE,
            Reason.multi_turn_not_judged,
            f"{self.template_name} does not use the variable 'turns', so it cannot show the "
            "judge a conversation's follow-up turns; loop over 'turns' (each has query, calls, "
            "results, answer) as the bundled template does",
        )


def _majority(votes: list[Verdict]) -> Verdict:
    """The verdict most votes gave (a tie rejects): the first passing one, or the first
    rejection, with the count in its detail when there was more than one vote."""
    passed = [vote for vote in votes if vote.accepted]
    if len(passed) * 2 > len(votes):
        return passed[0]
    rejected = next(vote for vote in votes if not vote.accepted)
    if len(votes) == 1:
        return rejected
    detail = f"{len(votes) - len(passed)} of {len(votes)} votes rejected: {rejected.detail}"
    return Verdict.reject(STAGE, rejected.reason or Reason.judge_rejected, detail)


class JudgeNotConfigured(ActionForgeError):
    """The semantic stage was asked for without a judge model."""


class SemanticOptions(BaseModel):
    """The semantic stage's options."""

    model_config = ConfigDict(extra="forbid")

    judge: BackendConfig = Field(
        description="the LLM the stage asks: backend, model, and base_url for an "
        "OpenAI-compatible server; give the job a 'judge', or set AF_LLM_BASE_URL and "
        "AF_LLM_MODEL where the API runs",
    )
    votes: int = Field(
        1,
        ge=1,
        le=9,
        description="answers asked of the judge per sample (seeds 0..votes-1, temperature "
        f"{VOTE_TEMPERATURE}); the majority decides, a tie rejects",
    )
    min_accuracy: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="the balanced accuracy the judge needs on a calibration set made from the "
        "job's catalog before it judges the job; below it the job fails with "
        "judge_uncalibrated. Default: the service's AF_JUDGE_MIN_ACCURACY (0.8); 0 skips "
        "calibration",
    )
    calibration_size: int = Field(
        24,
        ge=4,
        le=400,
        description="samples in the calibration set, half right answers, half wrong ones",
    )


class SemanticStage(StageBase):
    """The `semantic` stage: the judge named by its `judge` option.

    The backend is the worker process's shared one for that configuration (loaded once, kept
    across batches), so a worker that also generates with the same model holds one engine.
    """

    name = STAGE
    options_model: ClassVar[type[BaseModel]] = SemanticOptions
    judges_conversations = True

    @classmethod
    def with_llm_defaults(cls, options: Mapping[str, Any], llm: LlmDefaults) -> dict[str, Any]:
        """The deployment's server as the judge where the options name none."""
        filled = dict(options)
        if filled.get("judge") is None and llm.base_url and llm.model:
            filled["judge"] = {"backend": "openai", "base_url": llm.base_url, "model": llm.model}
        return filled

    def verify_batch(self, samples: Sequence[Sample], context: StageContext) -> list[Verdict]:
        """Judge every sample; raises `JudgeNotConfigured` without a judge configuration."""
        options = context.options.get(self.name)
        if not isinstance(options, SemanticOptions):
            raise JudgeNotConfigured(
                "the semantic stage needs a judge model: give the job a 'judge' (backend, "
                "model, and base_url for an OpenAI-compatible server), or drop 'semantic' from "
                "its verify stages"
            )
        return judge_for(options).judge(samples, context)


def judge_for(options: SemanticOptions) -> SemanticJudge:
    """The judge the stage's options name, on the worker's shared backend for it."""
    from llm.shared import shared_backend

    return SemanticJudge(shared_backend(options.judge), votes=options.votes)

"""What a verification stage says about a sample: accepted, or rejected with a reason code."""

from __future__ import annotations

from enum import StrEnum
from functools import cache

from pydantic import BaseModel, ConfigDict

DETAIL_LIMIT = 400


class Reason(StrEnum):
    """Stable reason codes. Users filter and count rejections by these; never rename one."""

    unknown_tool = "unknown_tool"
    missing_required_argument = "missing_required_argument"
    argument_type_mismatch = "argument_type_mismatch"
    enum_violation = "enum_violation"
    unexpected_argument = "unexpected_argument"
    arguments_not_json = "arguments_not_json"
    schema_violation = "schema_violation"
    invalid_tool_schema = "invalid_tool_schema"
    # execution (sandboxed Python functions)
    execution_error = "execution_error"
    timeout = "timeout"
    memory_limit = "memory_limit"
    output_limit = "output_limit"
    result_not_json = "result_not_json"
    sandbox_error = "sandbox_error"
    # execution across the turns of a conversation (the mock API's state of it)
    resource_not_found = "resource_not_found"
    value_not_in_results = "value_not_in_results"
    # generation (an LLM answer that was cut off, failed, did not parse, or broke its constraints;
    # a prompt too long for the model's context, never sent)
    truncated = "truncated"
    generation_error = "generation_error"
    unparseable_output = "unparseable_output"
    constraint_violated = "constraint_violated"
    prompt_too_long = "prompt_too_long"
    # generation of a multi_turn conversation (APIGen-MT): the blueprint's calls fail on the
    # mock API; the conversation's calls are not the blueprint's
    blueprint_failed = "blueprint_failed"
    blueprint_not_followed = "blueprint_not_followed"
    # query (the query does not read as a request)
    query_malformed = "query_malformed"
    # grounding (values the query does not state)
    value_not_in_query = "value_not_in_query"
    # coverage (the calls do all the query asks, once)
    query_value_unused = "query_value_unused"
    duplicate_call = "duplicate_call"
    extra_call = "extra_call"
    missing_call = "missing_call"
    # semantic judge
    judge_rejected = "judge_rejected"
    judge_unparseable = "judge_unparseable"
    # reading a dataset file (`actionforge verify`): the row is not a sample of its format
    unreadable_row = "unreadable_row"
    # a stage (a plugin's) that cannot judge a conversation (follow-up turns)
    multi_turn_not_judged = "multi_turn_not_judged"


class Verdict(BaseModel):
    """The outcome of one stage for one sample. `detail` names the argument and the rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accepted: bool
    stage: str
    reason: str | None = None
    detail: str | None = None

    @classmethod
    def accept(cls, stage: str) -> Verdict:
        return _accepted(cls, stage)

    @classmethod
    def reject(cls, stage: str, reason: str, detail: str) -> Verdict:
        if len(detail) > DETAIL_LIMIT:
            detail = detail[: DETAIL_LIMIT - 1] + "…"
        return cls(accepted=False, stage=stage, reason=str(reason), detail=detail)


@cache
def _accepted(cls: type[Verdict], stage: str) -> Verdict:
    # Verdicts are frozen: one accepting verdict per stage serves every sample.
    return cls(accepted=True, stage=stage)

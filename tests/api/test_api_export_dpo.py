"""`GET /v1/jobs/{id}/export?format=dpo` and `actionforge export --format dpo`: one preference pair
per accepted sample, whose rejected side really is wrong (the format verifier rejects it, or a
stage stored a rejecting verdict for it), readable by `datasets` and TRL's chat-template code."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from api_support import TRAVEL_CATALOG, Api, Outcome, add_job
from sqlalchemy import event, select
from typer.testing import CliRunner

from generators.base import GenerationRequest
from generators.perturb import PERTURBATIONS, perturb
from generators.template.generator import TemplateGenerator
from service.db.models import JobStatus, SampleRecord, SampleStatus, VerdictRecord
from service.export.dpo import DPO_CANDIDATES_PER_QUERY, dpo_bytes
from service.export.preference import NOT_WRONG_REASONS, build_pairs, write_pairs
from unified.catalogs import load_catalog
from unified.formats.hf import conversation
from unified.model import Sample, Step, ToolCall
from verifiers import FormatVerifier, Verdict

VERIFIER = FormatVerifier()
# A chat template that renders assistant tool calls (the tiny model's shows content only).
TOOL_CALL_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}"
    "{% if message['tool_calls'] is defined and message['tool_calls'] %}"
    "{% for call in message['tool_calls'] %}<call>{{ call['function'] | tojson }}</call>"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
ACCEPTED: Outcome = (SampleStatus.accepted, "format", None)
DUPLICATE: Outcome = (SampleStatus.rejected, "dedup", "duplicate")
JUDGED_WRONG: Outcome = (SampleStatus.rejected, "semantic", "judge_rejected")
UNVERIFIED: Outcome = (SampleStatus.generated, None, None)


@cache
def generated() -> tuple[Sample, ...]:
    tools = load_catalog(TRAVEL_CATALOG).tools
    request = GenerationRequest(n=16, seed=5, options={"created": "2026-01-01T00:00:00+00:00"})
    return tuple(TemplateGenerator().generate(tools, request))


def format_failures(chosen: Sample, count: int) -> list[Sample]:
    """Up to `count` different wrong answers to `chosen`'s query that the format verifier
    rejects."""
    found: dict[str, Sample] = {}
    for seed in range(8):
        for name in PERTURBATIONS:
            child = perturb(chosen, name, seed)
            if child is None or VERIFIER.verify(child).accepted:
                continue
            key = orjson.dumps([s.model_dump(mode="json") for s in child.steps]).decode()
            found.setdefault(key, child.model_copy(update={"id": f"{chosen.id}-wrong-{seed}"}))
    return list(found.values())[:count]


def semantic_failure(chosen: Sample) -> Sample | None:
    """A wrong answer that passes the format check (only a judge can tell it wrong)."""
    for name in ("invented_value", "dropped_call"):
        child = perturb(chosen, name)
        if child is not None and VERIFIER.verify(child).accepted:
            return child.model_copy(update={"id": f"{chosen.id}-judged"})
    return None


@dataclass
class DpoJob:
    """A stored job: its samples and outcomes in position order."""

    samples: list[Sample] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, sample: Sample, outcome: Outcome) -> None:
        self.samples.append(sample)
        self.outcomes.append(outcome)

    def accepted(self) -> list[Sample]:
        return [s for s, o in zip(self.samples, self.outcomes, strict=True) if o == ACCEPTED]

    def usable_rejected(self) -> list[tuple[Sample, Verdict]]:
        """The rejected samples an export may pair, with the verdicts `add_job` stores: at most
        `DPO_CANDIDATES_PER_QUERY` per query, the earliest."""
        per_query: dict[str, int] = {}
        usable = []
        for sample, (status, stage, reason) in zip(self.samples, self.outcomes, strict=True):
            if status != SampleStatus.rejected or reason in NOT_WRONG_REASONS:
                continue
            seen = per_query.get(sample.query.strip(), 0)
            per_query[sample.query.strip()] = seen + 1
            if seen < DPO_CANDIDATES_PER_QUERY:
                assert stage is not None and reason is not None
                usable.append((sample, Verdict.reject(stage, reason, f"{reason} in {sample.id}")))
        return usable


def build_job() -> DpoJob:
    """Accepted samples with, around them: format-rejected answers to the same query (six for
    one query, more than an export reads), an answer only a judge rejected, a duplicate (a right
    answer, never a pair's rejected side) and an unverified wrong answer."""
    job = DpoJob()
    for i, chosen in enumerate(generated()):
        kind = i % 4
        if kind == 0:
            for wrong in format_failures(chosen, 6 if i == 0 else 2):
                verdict = VERIFIER.verify(wrong)
                job.add(wrong, (SampleStatus.rejected, verdict.stage, verdict.reason))
        job.add(chosen, ACCEPTED)
        judged = semantic_failure(chosen) if kind == 1 else None
        if judged is not None:
            job.add(judged, JUDGED_WRONG)
        if kind == 2:
            job.add(chosen.model_copy(update={"id": f"{chosen.id}-copy"}), DUPLICATE)
        if kind == 3:
            for wrong in format_failures(chosen, 1):
                job.add(wrong.model_copy(update={"id": f"{chosen.id}-unverified"}), UNVERIFIED)
    return job


def expected_bytes(job: DpoJob) -> bytes:
    buffer = io.BytesIO()
    tools = load_catalog(TRAVEL_CATALOG).tools
    write_pairs(build_pairs(job.accepted(), job.usable_rejected(), seed=0, tools=tools), buffer)
    return buffer.getvalue()


def read_back(chosen: Sample, messages: list[dict[str, Any]]) -> Sample:
    """A sample answering `chosen`'s query with the calls and answers of exported messages."""
    steps = []
    for message in messages:
        if message["role"] == "assistant" and message.get("tool_calls"):
            calls = [
                ToolCall(name=c["function"]["name"], arguments=c["function"]["arguments"])
                for c in message["tool_calls"]
            ]
            steps.append(Step(tool_calls=calls))
        elif message["role"] == "assistant":
            steps.append(Step(answer=message["content"]))
    return chosen.model_copy(update={"id": "read-back", "steps": steps})


def calls(sample: Sample) -> list[tuple[str, Any]]:
    return [(call.name, call.arguments) for call in sample.tool_calls()]


def stored_rejections(api: Api, job_id: str) -> list[tuple[Sample, VerdictRecord]]:
    """The job's rejected samples with the verdict that rejected them, from the database."""
    with api.sessions() as session:
        rows = session.execute(
            select(SampleRecord.data, VerdictRecord)
            .join(VerdictRecord, VerdictRecord.sample_id == SampleRecord.id)
            .where(
                SampleRecord.job_id == job_id,
                SampleRecord.status == SampleStatus.rejected,
                VerdictRecord.accepted.is_(False),
            )
        ).all()
    return [(Sample.model_validate(data), verdict) for data, verdict in rows]


def export(api: Api, job_id: str) -> bytes:
    response = api.http.get(f"/v1/jobs/{job_id}/export", params={"format": "dpo"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["content-disposition"] == (f'attachment; filename="{job_id}-dpo.jsonl"')
    return response.content


def test_every_rejected_side_really_fails_and_every_chosen_side_passes(api: Api) -> None:
    job = build_job()
    job_id = add_job(api.sessions, job.samples, job.outcomes)
    rows = [orjson.loads(line) for line in export(api, job_id).splitlines()]

    accepted = job.accepted()
    assert len(rows) == len(accepted) == len(generated())
    rejections = stored_rejections(api, job_id)
    sources = {"format": 0, "stored verdict": 0, "job's own sample": 0}
    for row, chosen in zip(rows, accepted, strict=True):
        assert list(row) == ["prompt", "chosen", "rejected", "tools"]
        assert row["prompt"][-1] == {"role": "user", "content": chosen.query}
        assert row["prompt"] == conversation(chosen).messages[: len(row["prompt"])]
        assert row["tools"] == [tool.openai() for tool in chosen.tools]
        # Each side is the one assistant turn after the prompt: no tool results on either.
        for side in (row["chosen"], row["rejected"]):
            assert [message["role"] for message in side] == ["assistant"]
        right = read_back(chosen, row["chosen"])
        assert VERIFIER.verify(right).accepted
        assert calls(right) == calls(chosen)
        wrong = read_back(chosen, row["rejected"])
        assert calls(wrong) != calls(chosen)
        same_query = [
            (sample, verdict)
            for sample, verdict in rejections
            if sample.query.strip() == chosen.query.strip() and calls(sample) == calls(wrong)
        ]
        verdict = VERIFIER.verify(wrong)
        if verdict.accepted:
            # Passes the format check: only a stored rejection of that very answer makes it wrong.
            ((_, stored),) = same_query
            assert (stored.stage, stored.reason) == ("semantic", "judge_rejected")
            sources["stored verdict"] += 1
        else:
            sources["format"] += 1
        if same_query:
            assert all(stored.reason not in NOT_WRONG_REASONS for _, stored in same_query)
            sources["job's own sample"] += 1
    # Every kind of rejected side occurs: perturbations, real format failures, judged answers.
    assert sources["format"] > sources["job's own sample"] > sources["stored verdict"] > 0


def test_the_export_is_the_pairs_the_library_builds_whatever_the_chunk_size(api: Api) -> None:
    job = build_job()
    job_id = add_job(api.sessions, job.samples, job.outcomes)
    body = export(api, job_id)
    assert body == expected_bytes(job)
    assert export(api, job_id) == body
    assert b"".join(dpo_bytes(api.sessions, job_id, chunk_size=3)) == body


def test_a_job_with_nothing_accepted_exports_no_pairs(api: Api) -> None:
    job = build_job()
    outcomes = [o if o != ACCEPTED else UNVERIFIED for o in job.outcomes]
    job_id = add_job(api.sessions, job.samples, outcomes, status=JobStatus.running)
    response = api.http.get(f"/v1/jobs/{job_id}/export", params={"format": "dpo"})
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["x-export-complete"] == "false"


def test_the_file_loads_with_datasets_and_renders_with_a_chat_template(
    sqlite_api: Api, tmp_path: Path
) -> None:
    datasets = pytest.importorskip("datasets")
    from tiny_model import cached_tiny_model
    from transformers import AutoTokenizer
    from trl.data_utils import apply_chat_template, is_conversational

    job = build_job()
    job_id = add_job(sqlite_api.sessions, job.samples, job.outcomes)
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(export(sqlite_api, job_id))
    dataset = datasets.load_dataset(
        "json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf")
    )
    assert dataset.column_names == ["prompt", "chosen", "rejected", "tools"]
    assert dataset.num_rows == len(job.accepted())
    # No row changed on the way in (no key added to a message or a schema, no type changed).
    assert dataset.to_list() == [orjson.loads(line) for line in path.read_bytes().splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(cached_tiny_model())
    tool_calling = AutoTokenizer.from_pretrained(cached_tiny_model())
    tool_calling.chat_template = TOOL_CALL_TEMPLATE
    for example in dataset:
        assert is_conversational(example)
        for column in ("prompt", "chosen", "rejected"):
            messages = example[column]
            assert isinstance(messages, list) and messages
            for message in messages:
                assert isinstance(message, dict)
                assert {"role", "content"} <= set(message) <= {"role", "content", "tool_calls"}
                assert isinstance(message["content"], str)
                for call in message.get("tool_calls") or []:
                    assert isinstance(call["function"]["arguments"], dict)
        # The tiny model's own template (as DPOTrainer applies it) renders every row...
        rendered = apply_chat_template(example, tokenizer, tools=example["tools"])
        assert set(rendered) == {"prompt", "chosen", "rejected"}
        assert rendered["prompt"].endswith("<|assistant|>")
        assert example["prompt"][-1]["content"] in rendered["prompt"]
        # ...and a template that renders tool calls, as real models' templates do, shows each
        # side's calls: the two sides differ.
        both = apply_chat_template(example, tool_calling)
        for message in example["chosen"]:
            for call in message.get("tool_calls") or []:
                assert json.dumps(call["function"], ensure_ascii=False) in both["chosen"]
        assert both["chosen"] != both["rejected"]


def test_the_cli_writes_the_bytes_the_api_sends(sqlite_api: Api, tmp_path: Path) -> None:
    from service.cli.app import app

    job = build_job()
    job_id = add_job(sqlite_api.sessions, job.samples, job.outcomes)
    out = tmp_path / "pairs.jsonl"
    result = CliRunner().invoke(
        app,
        ["export", job_id, "--format", "dpo", "--out", str(out), "--url", sqlite_api.url],
        env={"AF_API_KEYS": ""},
    )
    assert result.exit_code == 0, result.stderr
    body = export(sqlite_api, job_id)
    assert out.read_bytes() == body
    assert f"wrote {len(job.accepted())} dpo rows ({len(body):,} bytes)" in " ".join(
        result.stderr.split()
    )


def test_pairs_stream_chunk_by_chunk_reading_few_rejected_samples(api: Api) -> None:
    """One pass over the rejected queries, then per chunk of accepted samples one read of them
    and at most one read of their rejected candidates; nothing before the first piece."""
    job = build_job()
    job_id = add_job(api.sessions, job.samples, job.outcomes)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM samples" in statement:
            statements.append(statement)

    def reads() -> dict[str, int]:
        kinds = {"index": 0, "accepted": 0, "candidates": 0}
        for statement in statements:
            if "JOIN verdicts" in statement:
                kinds["candidates"] += 1
            elif "CAST(samples.data AS" in statement:
                kinds["accepted"] += 1
            else:
                kinds["index"] += 1
        return kinds

    engine = api.app.state.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        pieces = dpo_bytes(api.sessions, job_id, chunk_size=5)
        assert statements == []
        first = next(pieces)
        assert reads() == {"index": 1, "accepted": 1, "candidates": 1}
        rest = list(pieces)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    chunks = -(-len(job.accepted()) // 5)
    assert len([first, *rest]) == chunks
    counted = reads()
    assert counted["index"] == 1
    assert counted["accepted"] in (chunks, chunks + 1)  # a full last chunk looks once more
    assert counted["candidates"] <= chunks
    assert b"".join([first, *rest]) == expected_bytes(job)

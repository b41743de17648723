"""The `llamafactory` export: LLaMA-Factory's sharegpt layout with tools, and its
`dataset_info.json` entry.

The last tests run LLaMA-Factory's own code on the export: its `dataset_info.json` parser
(`llamafactory.data.parser.get_dataset_list`), its `align_dataset` with the `sharegpt` converter
(`SharegptDatasetConverter`), the row checks of its supervised processor and its
`FunctionFormatter` / `ToolFormatter` on every call turn and tools column. They need the
`llamafactory` package, installed without its dependencies (scripts/setup-tests:
`pip install --no-deps llamafactory==0.9.5`; its pins, datasets<=4.0 and trl<=0.24, do not fit
beside ours), and are skipped without it. `llamafactory.data`'s `__init__` imports its whole
training stack (torchaudio among it, which this environment leaves out), so the package's
modules are loaded with that `__init__` passed over: the converter's own code runs unchanged.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import types
from pathlib import Path
from typing import Any

import orjson
import pytest
from format_samples import hand_built_samples, multi_turn_samples
from typer.testing import CliRunner

from generators.base import GenerationRequest
from generators.template.generator import TemplateGenerator
from service.cli.app import app
from service.export.registry import export_format_names, exporter
from unified.catalogs import load_catalog
from unified.errors import ActionForgeError
from unified.formats import FORMATS, read_samples, write_samples
from unified.formats.llamafactory import (
    NO_CALL_ANSWER,
    dataset_info_entry,
    results_summary,
    write_dataset_info,
)
from unified.model import Example, Sample, Step, ToolCall
from verifiers.execution import ExecutionStage
from verifiers.stages import StageContext

ROOT = Path(__file__).resolve().parents[3]
TRAVEL = ROOT / "examples" / "travel_api.yaml"
ODD = ("human", "observation")
EVEN = ("gpt", "function_call")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def rows_of(samples: list[Sample]) -> list[dict[str, Any]]:
    out = io.BytesIO()
    assert write_samples(samples, out, "llamafactory") == len(samples)
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def travel_samples(n: int = 300) -> list[Sample]:
    """`n` template samples of the travel catalog; the even ones with the results of the
    execution stage (the mock API's answers), the odd ones as generated (calls, no results)."""
    tools = load_catalog(TRAVEL).tools
    samples = TemplateGenerator().generate(tools, GenerationRequest(n=n, seed=7))
    executed = ExecutionStage().verify_batch(samples, StageContext.for_catalog(tools)).samples
    return [executed[i] if i % 2 == 0 else sample for i, sample in enumerate(samples)]


def assert_alternates(turns: list[dict[str, str]]) -> None:
    """The order LLaMA-Factory's sharegpt converter keeps."""
    assert turns and len(turns) % 2 == 0, [t["from"] for t in turns]
    for index, turn in enumerate(turns):
        assert turn["from"] in (ODD, EVEN)[index % 2], [t["from"] for t in turns]
        assert isinstance(turn["value"], str)


def call(name: str, **arguments: Any) -> ToolCall:
    return ToolCall(name=name, arguments=arguments)


def test_travel_rows_alternate_and_hold_calls_results_and_a_final_turn() -> None:
    samples = travel_samples()
    rows = rows_of(samples)
    ended = {"gpt": 0, "function_call": 0}
    for sample, row in zip(samples, rows, strict=True):
        assert set(row) == {"id", "conversations", "system", "tools"}
        assert row["id"] == sample.id and row["system"] == sample.task_instruction
        tools = json.loads(row["tools"])
        assert [t["name"] for t in tools] == [t.name for t in sample.tools]
        assert tools[0]["parameters"] == sample.tools[0].parameters
        turns = row["conversations"]
        assert_alternates(turns)
        assert turns[0] == {"from": "human", "value": sample.query}
        ended[turns[-1]["from"]] += 1
        if not sample.tool_calls():
            assert turns[1:] == [{"from": "gpt", "value": sample.final_answer()}]
            continue
        calls = json.loads(turns[1]["value"])
        calls = calls if isinstance(calls, list) else [calls]
        assert calls == [{"name": c.name, "arguments": c.arguments} for c in sample.tool_calls()]
        if len(sample.tool_calls()) > 1:
            assert turns[1]["value"].startswith("[")
        if sample.steps[0].results:
            assert [t["from"] for t in turns[2:]] == ["observation", "gpt"]
            assert turns[3]["value"] == results_summary(sample.steps[0])
        else:
            assert len(turns) == 2  # the calls, then nothing to observe
    assert ended["gpt"] > 150 and ended["function_call"] > 100


def test_parallel_results_are_joined_and_summarised() -> None:
    step = Step(
        tool_calls=[call("get_weather", city="Porto"), call("get_weather", city="Faro")],
        results=[{"temp": 18}, "sunny"],
    )
    sample = Sample(id="p", query="Porto and Faro?", steps=[step])
    (row,) = rows_of([sample])
    assert row["conversations"][1:] == [
        {
            "from": "function_call",
            "value": '[{"name": "get_weather", "arguments": {"city": "Porto"}}, '
            '{"name": "get_weather", "arguments": {"city": "Faro"}}]',
        },
        {"from": "observation", "value": '{"temp": 18}\n</tool_response>\n<tool_response>\nsunny'},
        {"from": "gpt", "value": 'get_weather returned: {"temp": 18}\nget_weather returned: sunny'},
    ]


def test_answers_examples_and_steps_that_cannot_be_written() -> None:
    fetch = Step(tool_calls=[call("search", q="x")], results=[[1, 2]], thought="look it up")
    answer = Step(answer="Two hits.")
    sample = Sample(
        id="multi",
        examples=[
            Example(query="ex 1", steps=[Step(tool_calls=[call("search", q="a")])]),
            Example(query="ex 2", steps=[]),
        ],
        query="q",
        steps=[
            Step(tool_calls=[call("search", q="x")], results=[[]], answer="Nothing; again."),
            fetch,
            answer,
            Step(answer="Anything else?"),
        ],
    )
    (row,) = rows_of([sample])
    turns = row["conversations"]
    assert_alternates(turns)
    assert [(t["from"], t["value"]) for t in turns] == [
        ("human", "ex 1"),
        ("function_call", '{"name": "search", "arguments": {"q": "a"}}'),
        ("human", "ex 2"),
        ("gpt", NO_CALL_ANSWER),
        ("human", "q"),
        ("function_call", '{"name": "search", "arguments": {"q": "x"}}'),
        ("observation", "[]"),
        # "Nothing; again." is left out: text before more calls has no place
        ("function_call", '{"name": "search", "arguments": {"q": "x"}}'),
        ("observation", "[1, 2]"),
        ("gpt", "Two hits.\n\nAnything else?"),
    ]
    unanswered = sample.model_copy(
        update={"examples": [], "steps": [Step(tool_calls=[call("a")]), fetch, answer]}
    )
    (row,) = rows_of([unanswered])
    assert [t["from"] for t in row["conversations"]] == ["human", "function_call"]


def test_hand_built_samples_alternate() -> None:
    for row in rows_of(hand_built_samples() + multi_turn_samples()):
        assert_alternates(row["conversations"])


def test_every_turn_of_a_conversation_is_a_human_turn_and_its_answers() -> None:
    trip, refused_first = multi_turn_samples()
    (row,) = rows_of([trip])
    turns = row["conversations"]
    assert [t["value"] for t in turns if t["from"] == "human"] == [
        t.query for t in trip.conversation()
    ]
    assert [t["from"] for t in turns] == [
        "human", "function_call", "observation", "gpt",
        "human", "function_call", "observation", "gpt",
        "human", "gpt",
    ]  # fmt: skip
    (row,) = rows_of([refused_first])
    assert [t["from"] for t in row["conversations"]] == ["human", "gpt", "human", "function_call"]


def test_registered_as_a_write_only_format_and_an_export() -> None:
    assert "llamafactory" in FORMATS.names() and "llamafactory" in export_format_names()
    assert exporter("llamafactory").file_name("j") == "j-llamafactory.jsonl"
    with pytest.raises(ActionForgeError, match="can be written but not read"):
        read_samples(TRAVEL, "llamafactory")


def test_dataset_info_is_merged_beside_the_file(tmp_path: Path) -> None:
    info = tmp_path / "dataset_info.json"
    info.write_text(json.dumps({"alpaca_en_demo": {"file_name": "alpaca_en_demo.json"}}))
    assert write_dataset_info(tmp_path / "travel.jsonl") == info
    assert json.loads(info.read_text()) == {
        "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
        "travel": {
            "file_name": "travel.jsonl",
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
            "tags": {
                "role_tag": "from",
                "content_tag": "value",
                "user_tag": "human",
                "assistant_tag": "gpt",
                "observation_tag": "observation",
                "function_tag": "function_call",
            },
        },
    }
    write_dataset_info(tmp_path / "travel.jsonl", name="mine")
    assert sorted(json.loads(info.read_text())) == ["alpaca_en_demo", "mine", "travel"]
    info.write_text("[1")
    with pytest.raises(ActionForgeError, match="cannot read it as JSON"):
        write_dataset_info(tmp_path / "travel.jsonl")
    assert info.read_text() == "[1"


def test_convert_writes_the_rows_and_the_dataset_info(tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    code, _, err = invoke(
        "convert",
        str(ROOT / "examples" / "travel_calls.jsonl"),
        "--from",
        "xlam",
        "--to",
        "llamafactory",
        "--out",
        str(out),
    )
    assert code == 0, err
    assert "dataset 'calls' added to" in err
    assert json.loads((tmp_path / "dataset_info.json").read_text()) == {
        "calls": dataset_info_entry("calls.jsonl")
    }
    for line in out.read_text().splitlines():
        assert_alternates(json.loads(line)["conversations"])


# LLaMA-Factory's own code


@pytest.fixture(scope="module")
def llamafactory_data() -> types.SimpleNamespace:
    spec = importlib.util.find_spec("llamafactory")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(
            "llamafactory is not installed: pip install --no-deps llamafactory==0.9.5 "
            "(scripts/setup-tests) to check the export with LLaMA-Factory's own converter"
        )
    if "llamafactory.data" not in sys.modules:
        # Pass over llamafactory/data/__init__.py (the whole training stack); its modules load
        # from their own files.
        package = types.ModuleType("llamafactory.data")
        package.__path__ = [str(Path(spec.submodule_search_locations[0]) / "data")]
        sys.modules["llamafactory.data"] = package
    from llamafactory.data import converter, formatter, parser

    return types.SimpleNamespace(converter=converter, formatter=formatter, parser=parser)


def test_llamafactory_keeps_every_travel_row(
    tmp_path: Path, llamafactory_data: types.SimpleNamespace
) -> None:
    import datasets

    samples = travel_samples() + hand_built_samples()
    data_file = tmp_path / "travel.jsonl"
    write_samples(samples, data_file, "llamafactory")
    write_dataset_info(data_file)

    (attr,) = llamafactory_data.parser.get_dataset_list(["travel"], str(tmp_path))
    assert (attr.load_from, attr.formatting, attr.messages, attr.tools, attr.system) == (
        "file",
        "sharegpt",
        "conversations",
        "tools",
        "system",
    )
    dataset = datasets.load_dataset(
        "json", data_files=str(data_file), split="train", cache_dir=str(tmp_path / "cache")
    )
    data_args = types.SimpleNamespace(
        streaming=False, preprocessing_num_workers=None, overwrite_cache=True, media_dir=""
    )
    training_args = types.SimpleNamespace(local_process_index=0)
    aligned = llamafactory_data.converter.align_dataset(dataset, attr, data_args, training_args)

    assert aligned.num_rows == len(samples)
    # The supervised processor's check: the rows it does not drop.
    kept = [row for row in aligned if len(row["_prompt"]) % 2 == 1 and len(row["_response"]) == 1]
    assert len(kept) == len(samples)
    for sample, row in zip(samples, aligned, strict=True):
        assert row["_system"] == sample.task_instruction
        first_query = (sample.examples or [sample])[0].query
        assert row["_prompt"][0] == {"role": "user", "content": first_query}
        assert row["_response"][0]["role"] in ("assistant", "function")

    # The call turns and the tools column as templates format them (default, qwen, llama3).
    formatter = llamafactory_data.formatter
    for tool_format in ("default", "qwen", "llama3"):
        functions = formatter.FunctionFormatter(slots=["{{content}}"], tool_format=tool_format)
        tools = formatter.ToolFormatter(tool_format=tool_format)
        for sample, row in zip(samples, aligned, strict=True):
            for message in row["_prompt"] + row["_response"]:
                if message["role"] == "function":
                    (text,) = functions.apply(content=message["content"])
                    written = json.loads(message["content"])
                    written = written if isinstance(written, list) else [written]
                    names = [c["name"] for c in written]
                    assert names and all(name in text for name in names), (tool_format, text)
            if sample.tools:
                (text,) = tools.apply(content=row["_tools"])
                assert all(t.name in text for t in sample.tools), tool_format

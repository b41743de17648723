"""Mock APIs from real public OpenAPI documents: checked calls, deterministic answers from the
response schemas, the documented routes over HTTP, and the `actionforge mock` command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from jsonschema import Draft202012Validator

from generators.base import GenerationRequest
from generators.template.generator import TemplateGenerator
from service.api.server import BackgroundServer
from service.mock_http import coerce, mock_app
from unified.catalogs import load_catalog, load_catalog_bytes
from unified.model import Sample, Step, Tool, ToolCall
from verifiers.mock_api import MockApi, with_observations
from verifiers.mock_responses import call_seed

ROOT = Path(__file__).resolve().parents[3]
OPENAPI = ROOT / "tests" / "data" / "openapi"
PETSTORE = OPENAPI / "oai-v3.0-petstore.yaml"
EXPANDED = OPENAPI / "oai-v3.0-petstore-expanded.yaml"
SWAGGER2 = OPENAPI / "swagger-codegen-v2.0-petstore.yaml"
USPTO = OPENAPI / "oai-v3.0-uspto.yaml"
TRAVEL = ROOT / "examples" / "travel_api.yaml"
XLAM_TOOLS = ROOT / "tests" / "data" / "functions" / "xlam_tools.json"
CATALOGS = [PETSTORE, EXPANDED, SWAGGER2, USPTO, TRAVEL, XLAM_TOOLS]


@cache
def tools_of(path: Path) -> tuple[Tool, ...]:
    return tuple(load_catalog(path).tools)


@cache
def api_of(path: Path) -> MockApi:
    return MockApi(tools_of(path))


def sample_calling(*calls: ToolCall) -> Sample:
    return Sample(id="s", query="q", steps=[Step(tool_calls=list(calls))])


# --- in-process calls -----------------------------------------------------------------------


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: p.name)
def test_template_samples_all_pass_and_results_fit_the_response_schemas(path: Path) -> None:
    tools = tools_of(path)
    api = api_of(path)
    samples = TemplateGenerator().generate(list(tools), GenerationRequest(n=120, seed=7))
    checked = 0
    for sample in samples:
        results, verdict = api.observe(sample)
        assert verdict.accepted, (sample.id, verdict)
        assert verdict.stage == "execution"
        assert len(results) == len(sample.tool_calls())
        for call, result in zip(sample.tool_calls(), results, strict=True):
            schema = api.by_name[call.name].response
            if schema:
                validator = Draft202012Validator(
                    schema, format_checker=Draft202012Validator.FORMAT_CHECKER
                )
                assert validator.is_valid(result), (call, result)
                checked += 1
            else:
                assert result["status"] == "ok" and result["tool"] == call.name
    if any(tool.response for tool in tools):
        assert checked > 0


def test_same_call_same_answer_across_instances_and_different_calls_differ() -> None:
    call = ToolCall(name="getPetById", arguments={"petId": 42})
    first = MockApi(tools_of(SWAGGER2)).call(call)
    second = MockApi(list(tools_of(SWAGGER2))).call(call)
    assert first.ok and first.body == second.body
    other = MockApi(tools_of(SWAGGER2)).call(ToolCall(name="getPetById", arguments={"petId": 43}))
    assert other.body != first.body


def test_the_seed_ignores_argument_order_but_not_values_or_tool() -> None:
    assert call_seed("t", {"a": 1, "b": 2}) == call_seed("t", {"b": 2, "a": 1})
    assert call_seed("t", {"a": 1}) != call_seed("t", {"a": 2})
    assert call_seed("t", {"a": 1}) != call_seed("u", {"a": 1})


def test_a_response_property_named_like_an_argument_echoes_it() -> None:
    result = api_of(EXPANDED).call(ToolCall(name="find_pet_by_id", arguments={"id": 314}))
    assert result.ok and result.body["id"] == 314 and isinstance(result.body["name"], str)


def test_a_tool_without_response_schema_answers_a_plain_object_echoing_arguments() -> None:
    api = api_of(EXPANDED)
    result = api.call(ToolCall(name="deletePet", arguments={"id": 9}))
    assert result.status == 200
    assert result.body["status"] == "ok" and result.body["tool"] == "deletePet"
    assert result.body["result"]["id"] == 9
    again = api.call(ToolCall(name="deletePet", arguments={"id": 9}))
    assert again.body == result.body


@pytest.mark.parametrize(
    ("call", "status", "reason", "words"),
    [
        (ToolCall(name="nope", arguments={}), 404, "unknown_tool", "no tool named 'nope'"),
        (ToolCall(name="getPetById", arguments={}), 422, "missing_required_argument", "petId"),
        (
            ToolCall(name="getPetById", arguments={"petId": "seven"}),
            422,
            "argument_type_mismatch",
            "argument 'petId'",
        ),
        (
            ToolCall(name="getPetById", arguments={"petId": 1, "colour": "red"}),
            422,
            "unexpected_argument",
            "argument 'colour' is not declared",
        ),
        (
            ToolCall(name="findPetsByStatus", arguments={"status": ["lost"]}),
            422,
            "enum_violation",
            "argument 'status'[0]",
        ),
        (
            ToolCall(name="getPetById", arguments="{not json"),
            422,
            "arguments_not_json",
            "not a JSON object",
        ),
    ],
)
def test_bad_calls_get_the_format_stages_reason_and_detail(
    call: ToolCall, status: int, reason: str, words: str
) -> None:
    result = api_of(SWAGGER2).call(call)
    assert (result.status, result.reason) == (status, reason)
    assert result.detail is not None and words in result.detail
    assert f"call of {call.name!r}" in result.detail
    assert result.body == {"error": {"reason": reason, "detail": result.detail, "tool": call.name}}


def test_observe_runs_every_call_and_names_the_first_bad_one() -> None:
    sample = sample_calling(
        ToolCall(name="getPetById", arguments={"petId": 1}),
        ToolCall(name="getOrderById", arguments={"orderId": 99}),
        ToolCall(name="ghost", arguments={}),
    )
    results, verdict = api_of(SWAGGER2).observe(sample)
    assert len(results) == 3 and isinstance(results[0]["name"], str)
    assert results[1]["error"]["reason"] == "schema_violation"
    assert results[2]["error"]["reason"] == "unknown_tool"
    assert (verdict.accepted, verdict.stage, verdict.reason) == (
        False,
        "execution",
        "schema_violation",
    )
    assert verdict.detail is not None and "call 1 ('getOrderById')" in verdict.detail
    assert "maximum" in verdict.detail


def test_observe_accepts_a_sample_without_calls() -> None:
    sample = Sample(id="s", query="q", steps=[Step(answer="I cannot help with that.")])
    results, verdict = api_of(PETSTORE).observe(sample)
    assert results == [] and verdict.accepted and verdict.stage == "execution"


def test_with_observations_puts_each_steps_results_on_its_step() -> None:
    sample = Sample(
        id="s",
        query="q",
        steps=[
            Step(tool_calls=[ToolCall(name="listPets", arguments={"limit": 2})]),
            Step(
                tool_calls=[
                    ToolCall(name="showPetById", arguments={"petId": "a"}),
                    ToolCall(name="showPetById", arguments={"petId": "b"}),
                ]
            ),
            Step(answer="done"),
        ],
    )
    results, verdict = api_of(PETSTORE).observe(sample)
    observed = with_observations(sample, results)
    assert verdict.accepted
    assert [len(step.results) for step in observed.steps] == [1, 2, 0]
    assert observed.steps[1].results[1] == results[2]
    assert sample.steps[0].results == []


# --- HTTP: the documented routes and /tools/{name} ------------------------------------------


@pytest.fixture(scope="module")
def swagger2_client() -> Any:
    """A client of the Swagger 2.0 petstore's mock, served over real HTTP."""
    app = mock_app(MockApi(tools_of(SWAGGER2)))
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as client:  # type: ignore[arg-type]
        yield client


def test_path_parameter_is_coerced_and_answered_like_the_in_process_call(
    swagger2_client: httpx.Client,
) -> None:
    response = swagger2_client.get("/pet/42")
    assert response.status_code == 200
    expected = api_of(SWAGGER2).call(ToolCall(name="getPetById", arguments={"petId": 42}))
    assert response.json() == expected.body
    assert swagger2_client.get("/v2/pet/42").json() == expected.body


def test_a_concrete_route_wins_over_a_templated_one_and_repeated_query_values_are_a_list(
    swagger2_client: httpx.Client,
) -> None:
    response = swagger2_client.get("/pet/findByStatus?status=available&status=sold")
    assert response.status_code == 200
    assert isinstance(response.json(), list)
    expected = api_of(SWAGGER2).call(
        ToolCall(name="findPetsByStatus", arguments={"status": ["available", "sold"]})
    )
    assert response.json() == expected.body
    assert swagger2_client.get("/pet/findByStatus?status=available,sold").json() == expected.body


def test_a_bad_path_value_is_a_type_mismatch(swagger2_client: httpx.Client) -> None:
    response = swagger2_client.get("/pet/seven")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["reason"] == "argument_type_mismatch" and "'petId'" in error["detail"]


def test_a_query_parameter_the_tool_does_not_declare_is_rejected(
    swagger2_client: httpx.Client,
) -> None:
    error = swagger2_client.get("/store/inventory?debug=1").json()["error"]
    assert error["reason"] == "unexpected_argument" and "'debug'" in error["detail"]


def test_json_body_properties_and_whole_body_arguments(swagger2_client: httpx.Client) -> None:
    order = {"petId": 3, "quantity": 2, "status": "placed"}
    placed = swagger2_client.post("/store/order", json=order)
    assert placed.status_code == 200
    assert placed.json()["petId"] == 3 and placed.json()["quantity"] == 2
    users = [{"username": "ada"}, {"username": "bob"}]
    created = swagger2_client.post("/user/createWithList", json=users)
    assert created.status_code == 200
    assert created.json()["result"]["body"] == users
    missing = swagger2_client.post("/pet", json={"id": 1})
    assert missing.json()["error"]["reason"] == "missing_required_argument"


def test_header_and_form_arguments(swagger2_client: httpx.Client) -> None:
    deleted = swagger2_client.delete("/pet/5", headers={"api_key": "k-1"})
    assert deleted.status_code == 200
    assert deleted.json()["result"] == {
        "id": deleted.json()["result"]["id"],
        "api_key": "k-1",
        "petId": 5,
    }
    updated = swagger2_client.post("/pet/5", data={"name": "Rex", "status": "sold"})
    assert updated.status_code == 200
    assert updated.json()["result"]["name"] == "Rex" and updated.json()["result"]["petId"] == 5


def test_a_body_that_is_not_json_is_arguments_not_json(swagger2_client: httpx.Client) -> None:
    response = swagger2_client.post(
        "/store/order", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["reason"] == "arguments_not_json" and error["tool"] == "placeOrder"
    assert "not JSON" in error["detail"]


def test_generic_tool_endpoint(swagger2_client: httpx.Client) -> None:
    ok = swagger2_client.post("/tools/getOrderById", json={"orderId": 3})
    expected = api_of(SWAGGER2).call(ToolCall(name="getOrderById", arguments={"orderId": 3}))
    assert ok.status_code == 200 and ok.json() == expected.body
    bad = swagger2_client.post("/tools/getOrderById", json={"orderId": "3"})
    assert bad.status_code == 422 and bad.json()["error"]["reason"] == "argument_type_mismatch"
    unknown = swagger2_client.post("/tools/adoptPet", json={})
    assert unknown.status_code == 404 and unknown.json()["error"]["reason"] == "unknown_tool"
    not_object = swagger2_client.post("/tools/getOrderById", json=[1])
    assert not_object.status_code == 422
    assert not_object.json()["error"]["reason"] == "arguments_not_json"


def test_unknown_routes_and_methods(swagger2_client: httpx.Client) -> None:
    missing = swagger2_client.get("/nowhere")
    assert missing.status_code == 404
    assert "POST /tools/{name}" in missing.json()["error"]["detail"]
    wrong_method = swagger2_client.patch("/pet/5")
    assert wrong_method.status_code == 405
    assert "DELETE, GET, POST" in wrong_method.json()["error"]["detail"]
    listed = swagger2_client.get("/tools").json()
    assert [t["function"]["name"] for t in listed] == [t.name for t in tools_of(SWAGGER2)]


def test_arguments_renamed_for_a_name_clash_are_read_from_their_own_place() -> None:
    document = {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/items/{id}": {
                "get": {
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {"name": "id", "in": "query", "schema": {"type": "integer"}},
                        {"name": "id", "in": "header", "schema": {"type": "boolean"}},
                    ],
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }
    catalog = load_catalog_bytes(orjson.dumps(document), "clash.json")
    assert len(catalog.warnings) == 2
    app = mock_app(MockApi(catalog.tools))
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as client:  # type: ignore[arg-type]
        answer = client.get("/items/abc?id=5", headers={"id": "true"})
    assert answer.status_code == 200
    assert answer.json()["result"] == {"id": "abc", "id_query": 5, "id_header": True}


def test_function_list_catalogs_are_served_at_tools_name() -> None:
    tools = tools_of(XLAM_TOOLS)
    app = mock_app(MockApi(tools))
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as client:  # type: ignore[arg-type]
        sample = TemplateGenerator().generate(list(tools), GenerationRequest(n=5, seed=3))
        for call in [c for s in sample for c in s.tool_calls()]:
            response = client.post(f"/tools/{call.name}", json=call.arguments)
            assert response.status_code == 200
            assert response.json() == api_of(XLAM_TOOLS).call(call).body


@pytest.mark.parametrize(
    ("text", "schema", "value"),
    [
        ("12", {"type": "integer"}, 12),
        ("1.5", {"type": "number"}, 1.5),
        ("3", {"type": "number"}, 3),
        ("inf", {"type": "number"}, "inf"),
        ("true", {"type": "boolean"}, True),
        ("12", {"type": "string"}, "12"),
        ("x", {"type": "integer"}, "x"),
        ("null", {"type": ["integer", "null"]}, None),
        ('{"a": 1}', {"type": "object"}, {"a": 1}),
        ("7", {"anyOf": [{"type": "integer"}, {"type": "boolean"}]}, 7),
    ],
)
def test_strings_from_urls_are_coerced_per_schema(text: str, schema: Any, value: Any) -> None:
    assert coerce(text, schema) == value


# --- real HTTP, and the command ---------------------------------------------------------------


def test_served_over_real_http_with_a_server_path_prefix() -> None:
    app = mock_app(MockApi(tools_of(TRAVEL)))
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as http:  # type: ignore[arg-type]
        weather = http.get("/v1/weather/Paris", params={"unit": "fahrenheit", "days": "3"})
        assert weather.status_code == 200
        expected = api_of(TRAVEL).call(
            ToolCall(
                name="get_weather", arguments={"city": "Paris", "unit": "fahrenheit", "days": 3}
            )
        )
        assert weather.json() == expected.body and weather.json()["city"] == "Paris"
        too_many = http.get("/weather/Paris", params={"days": "40"})
        assert too_many.status_code == 422
        assert too_many.json()["error"]["reason"] == "schema_violation"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _actionforge(*args: str) -> list[str]:
    return [sys.executable, "-m", "service.cli.app", *args]


def test_mock_command_serves_the_catalog_until_stopped() -> None:
    port = _free_port()
    process = subprocess.Popen(
        _actionforge("mock", str(PETSTORE), "--port", str(port)),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        response = None
        deadline = time.monotonic() + 60
        while response is None and time.monotonic() < deadline and process.poll() is None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/pets/abc")
            except httpx.TransportError:
                time.sleep(0.1)
        assert response is not None, "the mock command did not start"
        assert response.status_code == 200
        assert isinstance(response.json(), list)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    text = output.decode()
    assert f"at http://127.0.0.1:{port}" in text and "3 tools" in text


def test_mock_command_names_a_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            _actionforge("mock", str(PETSTORE), "--port", str(port)),
            cwd=ROOT,
            capture_output=True,
            timeout=60,
        )
    assert done.returncode == 2
    message = done.stderr.decode()
    assert f"cannot listen on 127.0.0.1:{port}" in message and "pick another --port" in message


def test_mock_command_reports_a_bad_catalog_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("openapi: 3.0.0\npaths: [\n")
    done = subprocess.run(_actionforge("mock", str(bad)), cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode == 2
    message = " ".join(done.stderr.decode().split())
    assert "broken.yaml" in message and "error:" in message

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_catalog_show_prints_a_table_of_tools() -> None:
    code, out, _ = invoke("catalog", "show", str(EXAMPLES / "travel_api.yaml"))
    assert code == 0
    assert "Travel Helper API (openapi, 3 tools)" in out
    for name in ("get_weather", "search_flights", "convert_currency"):
        assert name in out
    assert "city*: string" in out


def test_catalog_show_json_is_an_openai_tools_list() -> None:
    code, out, _ = invoke("catalog", "show", str(EXAMPLES / "travel_api.yaml"), "--json")
    assert code == 0
    tools = json.loads(out)
    assert [t["function"]["name"] for t in tools] == [
        "get_weather",
        "search_flights",
        "convert_currency",
    ]
    assert all(t["type"] == "function" for t in tools)
    assert tools[0]["function"]["parameters"]["required"] == ["city"]


def test_bad_catalog_is_one_readable_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("openapi: 3.0.0\ninfo: [unclosed\n")
    code, _, err = invoke("catalog", "show", str(bad))
    assert code == 2
    assert err.startswith("error: ")
    assert str(bad) in err and "line " in err and "column" in err
    assert len(err.strip().splitlines()) == 1


def test_an_alias_bomb_is_one_readable_line_and_exit_2(tmp_path: Path) -> None:
    lines = ["openapi: 3.0.0", "x-lol:", "  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"  {name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    code, _, err = invoke("catalog", "show", str(bomb))
    assert code == 2
    assert err == (
        f"error: {bomb}: line 8, column 10: the alias *e brings in 66,430 nodes, and aliases "
        "may bring in 100,000 in all; write the repeated parts out, or use fewer aliases\n"
    )


def test_catalog_show_prints_the_loaders_warnings_on_stderr(tmp_path: Path) -> None:
    api = tmp_path / "clash.yaml"
    api.write_text(
        'openapi: 3.0.0\ninfo: {title: t, version: "1"}\npaths:\n  /x/{id}:\n    get:\n'
        "      parameters: [{name: id, in: query, schema: {type: integer}}]\n"
        '      responses: {"200": {description: ok}}\n'
    )
    code, out, err = invoke("catalog", "show", str(api), "--json")
    assert code == 0
    (tool,) = json.loads(out)
    assert list(tool["function"]["parameters"]["properties"]) == ["id_query", "id"]
    assert err == (
        f"warning: {api}: /paths/~1x~1{{id}}/get/parameters/0: query parameter 'id' has the "
        "same name as a path parameter (operation GET /x/{id}); its argument is named "
        "'id_query' and is still sent as query parameter 'id'\n"
    )


def test_missing_file_is_one_readable_line(tmp_path: Path) -> None:
    code, _, err = invoke("catalog", "show", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "nope.yaml" in err and "cannot read the file" in err


def test_verify_writes_one_verdict_per_row_in_order(tmp_path: Path) -> None:
    out = tmp_path / "verdicts.jsonl"
    code, stdout, _ = invoke(
        "verify",
        str(EXAMPLES / "travel_calls.jsonl"),
        "--from",
        "xlam",
        "--catalog",
        str(EXAMPLES / "travel_api.yaml"),
        "--out",
        str(out),
    )
    assert code == 0
    verdicts = [json.loads(line) for line in out.read_text().splitlines()]
    assert [v["index"] for v in verdicts] == list(range(12))
    assert [v["id"] for v in verdicts] == [str(i) for i in range(12)]
    assert set(verdicts[0]) == {"index", "id", "accepted", "stage", "reason", "detail"}
    reasons = [v["reason"] for v in verdicts]
    assert reasons == [
        None,
        None,
        None,
        None,
        None,
        "enum_violation",
        "schema_violation",
        "argument_type_mismatch",
        "unknown_tool",
        "missing_required_argument",
        "unexpected_argument",
        None,
    ]
    # The default stages: the rejected rows break the format; the right ones pass every stage.
    assert {v["stage"] for v in verdicts if not v["accepted"]} == {"format"}
    assert {v["stage"] for v in verdicts if v["accepted"]} == {"coverage"}
    assert "accepted" in stdout and "enum_violation" in stdout


def test_verify_without_catalog_uses_each_rows_tools(tmp_path: Path) -> None:
    out = tmp_path / "verdicts.jsonl"
    code, _, _ = invoke(
        "verify", str(EXAMPLES / "travel_calls.jsonl"), "--from", "xlam", "--out", str(out)
    )
    assert code == 0
    verdicts = [json.loads(line) for line in out.read_text().splitlines()]
    # The rows' own xLAM tools have no IATA pattern, so the Boston row passes without the catalog.
    assert verdicts[6]["accepted"] is True
    assert verdicts[8]["reason"] == "unknown_tool"


def test_verify_judges_every_row_and_an_unreadable_one_gets_a_read_verdict(
    tmp_path: Path,
) -> None:
    rows = tmp_path / "rows.jsonl"
    good = (EXAMPLES / "travel_calls.jsonl").read_text().splitlines()[0]
    lines = [good, "not json", '{"id": 9, "query": "q"}', good]
    rows.write_text("\n".join(lines) + "\n")
    out = tmp_path / "v.jsonl"
    code, stdout, _ = invoke("verify", str(rows), "--from", "xlam", "--out", str(out))
    assert code == 0
    verdicts = [json.loads(line) for line in out.read_text().splitlines()]
    assert [v["index"] for v in verdicts] == [0, 1, 2, 3]
    assert [v["accepted"] for v in verdicts] == [True, False, False, True]
    for unreadable in verdicts[1:3]:
        assert (unreadable["id"], unreadable["stage"], unreadable["reason"]) == (
            None,
            "read",
            "unreadable_row",
        )
    assert verdicts[1]["detail"].startswith("not valid JSON")
    assert "tools" in verdicts[2]["detail"]
    assert "unreadable_row" in stdout


def test_verify_of_a_file_that_cannot_be_read_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "rows.json"
    bad.write_text('[{"id": 1, "query": "q", "tools": "[]", "answers": "[]"}, {"id"')
    code, _, err = invoke("verify", str(bad), "--from", "xlam", "--out", str(tmp_path / "v.jsonl"))
    assert code == 2
    assert str(bad) in err


def test_unknown_format_lists_the_known_ones(tmp_path: Path) -> None:
    code, _, err = invoke(
        "convert", str(EXAMPLES / "travel_calls.jsonl"), "--from", "xlamm", "--to", "openai"
    )
    assert code == 2
    assert "Unknown dataset format 'xlamm'" in err and "sharegpt" in err


@pytest.mark.parametrize("target", ["unified", "openai", "sharegpt", "xlam"])
def test_convert_round_trips_through_every_writable_format(tmp_path: Path, target: str) -> None:
    there = tmp_path / f"rows.{target}.jsonl"
    back = tmp_path / "rows.xlam.jsonl"
    src = EXAMPLES / "travel_calls.jsonl"
    assert (
        invoke("convert", str(src), "--from", "xlam", "--to", target, "--out", str(there))[0] == 0
    )
    assert (
        invoke("convert", str(there), "--from", target, "--to", "xlam", "--out", str(back))[0] == 0
    )
    original = [json.loads(line) for line in src.read_text().splitlines()]
    again = [json.loads(line) for line in back.read_text().splitlines()]
    assert [r["query"] for r in again] == [r["query"] for r in original]
    assert [json.loads(r["answers"]) for r in again] == [json.loads(r["answers"]) for r in original]


def test_convert_to_stdout(tmp_path: Path) -> None:
    code, out, _ = invoke(
        "convert", str(EXAMPLES / "travel_calls.jsonl"), "--from", "xlam", "--to", "unified"
    )
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 12 and rows[0]["format_version"] == "1.0"


def test_schema_command_prints_the_published_schema() -> None:
    code, out, _ = invoke("schema")
    assert code == 0
    assert out == (ROOT / "docs" / "unified-sample.schema.json").read_text()


def test_installed_console_script_verifies_the_bundled_examples(tmp_path: Path) -> None:
    script = shutil.which("actionforge", path=str(Path(sys.executable).parent))
    assert script, "the console script `actionforge` is not installed beside this Python"
    out = tmp_path / "verdicts.jsonl"
    done = subprocess.run(
        [
            script,
            "verify",
            "examples/travel_calls.jsonl",
            "--from",
            "xlam",
            "--catalog",
            "examples/travel_api.yaml",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(out.read_text().splitlines()) == 12
    assert "12 rows verified" in done.stdout


def test_convert_to_hf_writes_training_rows_and_hf_cannot_be_read_back(tmp_path: Path) -> None:
    there = tmp_path / "rows.hf.jsonl"
    src = EXAMPLES / "travel_calls.jsonl"
    assert invoke("convert", str(src), "--from", "xlam", "--to", "hf", "--out", str(there))[0] == 0
    rows = [json.loads(line) for line in there.read_text().splitlines()]
    assert len(rows) == len(src.read_text().splitlines())
    assert all(list(row) == ["messages", "tools", "final_turn"] for row in rows)
    code, _, err = invoke("convert", str(there), "--from", "hf", "--to", "xlam")
    assert code != 0 and "format 'hf' is written for training, not read back" in err

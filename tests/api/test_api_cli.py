"""`actionforge submit`, `status` and `export` against a real API; errors as one readable line."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from api_support import TRAVEL_CATALOG, Api, Outcome, add_job, real_samples
from typer.testing import CliRunner

from service.cli.commands.job_spec import job_spec, parse_styles
from service.db.models import JobStatus, SampleStatus
from service.pipeline.counts import refresh_counts
from unified.errors import ActionForgeError
from unified.formats import write_samples
from unified.formats.llamafactory import dataset_info_entry
from verifiers.stages import STAGES

KEY = "k3y-for-the-cli-tests-0123456789"
REJECTED: Outcome = (SampleStatus.rejected, "format", "missing_required_argument")
ACCEPTED: Outcome = (SampleStatus.accepted, "format", None)

runner = CliRunner()


def invoke(*args: str, **env: str) -> tuple[int, str, str]:
    from service.cli.app import app

    result = runner.invoke(app, list(args), env={"AF_API_KEYS": "", **env})
    return result.exit_code, result.stdout, result.stderr


def one_line(text: str) -> str:
    return " ".join(text.split())


def finished_job(api: Api) -> tuple[str, list]:
    """A succeeded job of 6 real samples, 4 accepted, with its counts stored."""
    samples = real_samples()[:6]
    outcomes = [ACCEPTED, REJECTED, ACCEPTED, ACCEPTED, REJECTED, ACCEPTED]
    job_id = add_job(api.sessions, samples, outcomes, status=JobStatus.succeeded)
    with api.sessions() as session, session.begin():
        refresh_counts(session, job_id)
    accepted = [s for s, o in zip(samples, outcomes, strict=True) if o == ACCEPTED]
    return job_id, accepted


def test_submit_uploads_the_catalog_and_queues_the_job(sqlite_api: Api) -> None:
    code, out, err = invoke(
        "submit", str(TRAVEL_CATALOG), "--n", "7", "--seed", "3", "--styles", "simple=1,parallel=2",
        "--url", sqlite_api.url,
    )  # fmt: skip
    assert code == 0, err
    job_id = out.strip()
    assert "catalog travel_api.yaml: 3 tools (openapi)" in one_line(err)
    assert f"follow it with: actionforge status {job_id}" in one_line(err)
    job = sqlite_api.http.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "queued"
    assert (job["spec"]["n"], job["spec"]["seed"]) == (7, 3)
    assert job["spec"]["styles"] == {"simple": 1.0, "parallel": 2.0}
    sqlite_api.http.post(f"/v1/jobs/{job_id}/cancel")


def test_submit_prints_the_loaders_warnings(sqlite_api: Api, tmp_path: Path) -> None:
    catalog = tmp_path / "clash.yaml"
    catalog.write_text(
        'openapi: 3.0.0\ninfo: {title: t, version: "1"}\npaths:\n  /x/{id}:\n    get:\n'
        "      parameters: [{name: id, in: query, schema: {type: integer}}]\n"
        '      responses: {"200": {description: ok}}\n'
    )
    code, out, err = invoke("submit", str(catalog), "--n", "2", "--url", sqlite_api.url)
    assert code == 0, err
    assert (
        "warning: clash.yaml: /paths/~1x~1{id}/get/parameters/0: query parameter 'id' has the "
        "same name as a path parameter (operation GET /x/{id}); its argument is named "
        "'id_query' and is still sent as query parameter 'id'"
    ) in one_line(err)
    sqlite_api.http.post(f"/v1/jobs/{out.strip()}/cancel")


def test_status_prints_the_funnel_and_the_reasons(sqlite_api: Api) -> None:
    job_id, _ = finished_job(sqlite_api)
    code, out, err = invoke("status", job_id, "--url", sqlite_api.url)
    assert code == 0, err
    lines = [one_line(line.replace("│", " ")) for line in out.splitlines()]
    assert lines[0].startswith(f"job {job_id}: succeeded")
    assert "requested 6" in lines
    assert "generated 6" in lines
    assert "format 4 -2 66.7%" in lines
    assert "accepted 4 66.7%" in lines
    assert "missing_required_argument format 2 33.3%" in lines
    examples = f"{job_id}-0000001 {job_id}-0000004"
    assert f"missing_required_argument: {examples}" in lines

    code, out, _ = invoke("status", job_id, "--json", "--url", sqlite_api.url)
    assert code == 0
    assert json.loads(out) == sqlite_api.http.get(f"/v1/jobs/{job_id}").json()


@pytest.mark.parametrize("fmt", ["sharegpt", "parquet", "hf"])
def test_export_streams_the_accepted_samples_into_the_file(
    sqlite_api: Api, tmp_path: Path, fmt: str
) -> None:
    job_id, accepted = finished_job(sqlite_api)
    out = tmp_path / f"dataset.{fmt}"
    code, _, err = invoke(
        "export", job_id, "--format", fmt, "--out", str(out), "--url", sqlite_api.url
    )
    assert code == 0, err
    assert f"wrote 4 {fmt} rows" in one_line(err)
    assert not out.with_name(out.name + ".partial").exists()
    if fmt == "parquet":
        assert pq.read_table(out).column("id").to_pylist() == [s.id for s in accepted]
    else:
        expected = io.BytesIO()
        write_samples(accepted, expected, fmt)
        assert out.read_bytes() == expected.getvalue()


def test_export_in_llamafactory_adds_its_dataset_info_entry(
    sqlite_api: Api, tmp_path: Path
) -> None:
    job_id, accepted = finished_job(sqlite_api)
    info = tmp_path / "dataset_info.json"
    info.write_text(json.dumps({"other": {"file_name": "other.json"}}))
    out = tmp_path / "travel.jsonl"
    code, _, err = invoke(
        "export", job_id, "--format", "llamafactory", "--out", str(out), "--url", sqlite_api.url
    )
    assert code == 0, err
    assert f"dataset 'travel' added to {info}" in one_line(err)
    expected = io.BytesIO()
    write_samples(accepted, expected, "llamafactory")
    assert out.read_bytes() == expected.getvalue()
    assert json.loads(info.read_text()) == {
        "other": {"file_name": "other.json"},
        "travel": dataset_info_entry("travel.jsonl"),
    }


def test_export_of_a_running_job_warns_that_it_is_partial(sqlite_api: Api, tmp_path: Path) -> None:
    job_id = add_job(sqlite_api.sessions, real_samples()[:2], status=JobStatus.running)
    out = tmp_path / "partial.jsonl"
    code, _, err = invoke("export", job_id, "--out", str(out), "--url", sqlite_api.url)
    assert code == 0, err
    assert f"job {job_id} is running: the file holds the samples accepted so far" in one_line(err)
    assert len(out.read_text().splitlines()) == 2


def test_the_cli_sends_the_first_configured_api_key(own_api: Callable[..., Api]) -> None:
    api = own_api(api_keys=[KEY])
    job_id, _ = finished_job(api)
    code, _, err = invoke("status", job_id, "--url", api.url, AF_API_KEYS=KEY)
    assert code == 0, err
    code, _, err = invoke("status", job_id, "--url", api.url)
    assert code == 2
    assert one_line(err) == (
        f"error: GET /v1/jobs/{job_id} answered 401: missing the X-API-Key header; "
        "send one of the keys set in AF_API_KEYS"
    )


def test_the_api_url_comes_from_the_settings(sqlite_api: Api) -> None:
    job_id, _ = finished_job(sqlite_api)
    code, out, err = invoke("status", job_id, "--json", AF_API_URL=sqlite_api.url)
    assert code == 0, err
    assert json.loads(out)["id"] == job_id


def test_api_refusals_are_one_readable_line(sqlite_api: Api, tmp_path: Path) -> None:
    code, _, err = invoke("status", "no-such-job", "--url", sqlite_api.url)
    assert code == 2
    assert one_line(err).startswith(
        "error: GET /v1/jobs/no-such-job answered 404: job 'no-such-job' does not exist;"
    )

    broken = tmp_path / "broken.yaml"
    broken.write_text(TRAVEL_CATALOG.read_text().replace("paths:", "paths: [", 1))
    code, _, err = invoke("submit", str(broken), "--n", "5", "--url", sqlite_api.url)
    assert code == 2
    assert one_line(err).startswith("error: POST /v1/catalogs answered 422: broken.yaml: line ")

    code, _, err = invoke(
        "submit", str(TRAVEL_CATALOG), "--n", "5", "--verify", "format,vibes",
        "--url", sqlite_api.url,
    )  # fmt: skip
    assert code == 2
    known = ", ".join(STAGES.names())
    assert f"answered 422: verify: Unknown verification stage 'vibes'. Known: {known};" in (
        one_line(err)
    )


def test_an_unreachable_api_says_how_to_start_one() -> None:
    code, _, err = invoke("status", "some-job", "--url", "http://127.0.0.1:9")
    assert code == 2
    message = one_line(err)
    assert message.startswith("error: cannot reach the ActionForge API at http://127.0.0.1:9 (")
    assert message.endswith(
        "start it with `actionforge serve`, or point AF_API_URL (or --url) at a running one"
    )


def test_a_missing_catalog_file_is_one_readable_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    code, _, err = invoke("submit", str(missing), "--n", "5", "--url", "http://127.0.0.1:9")
    assert code == 2
    assert one_line(err) == f"error: {missing}: No such file or directory"
    code, _, err = invoke("run", str(missing), "--n", "5", AF_DATA_DIR=str(tmp_path / "data"))
    assert code == 2
    assert one_line(err) == f"error: {missing}: no such file; give the path of a catalog file"
    assert not (tmp_path / "data").exists(), "nothing is started for a missing catalog"


def test_bad_options_say_what_to_write() -> None:
    code, _, err = invoke("submit", str(TRAVEL_CATALOG), "--n", "5", "--styles", "simple:1")
    assert code == 2
    assert one_line(err) == (
        "error: --styles: 'simple:1' is not name=weight; write style weights separated by "
        "commas, e.g. simple=1,parallel=2"
    )
    code, _, err = invoke("run", str(TRAVEL_CATALOG), "--n", "5", "--format", "bfcl")
    assert code == 2
    assert one_line(err) == (
        "error: --format: cannot export in 'bfcl'; use one of: dpo, hf, llamafactory, openai, "
        "parquet, "
        "sharegpt, unified, xlam"
    )
    code, _, err = invoke("status", "x", AF_API_KEYS="short")
    assert code == 2
    assert one_line(err).startswith("error: invalid settings: AF_API_KEYS holds a placeholder")


def test_job_specs_from_options() -> None:
    assert job_spec(5, 1, None, None, None) == {"n": 5, "seed": 1}
    assert job_spec(5, 1, "simple=1, parallel = 2.5", "template", "format") == {
        "n": 5,
        "seed": 1,
        "styles": {"simple": 1.0, "parallel": 2.5},
        "generator": "template",
        "verify": ["format"],
    }
    for bad in ("", "simple", "=1", "simple=lots"):
        with pytest.raises(ActionForgeError):
            parse_styles(bad)


def test_export_to_hf_writes_a_folder_datasets_loads_with_a_card_of_the_funnel(
    sqlite_api: Api, tmp_path: Path
) -> None:
    import datasets
    import yaml

    job_id, accepted = finished_job(sqlite_api)
    folder = tmp_path / "travel-hf"
    code, _, err = invoke("export", job_id, "--to-hf", str(folder), "--url", sqlite_api.url)
    assert code == 0, err
    assert "wrote 4 hf rows" in one_line(err)
    expected = io.BytesIO()
    write_samples(accepted, expected, "hf")
    assert (folder / "data" / "train.jsonl").read_bytes() == expected.getvalue()

    card = (folder / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "other" and front["size_categories"] == ["n<1K"]
    assert front["configs"][0]["data_files"] == [{"split": "train", "path": "data/train.jsonl"}]
    assert "| format | 4 | 2 |" in card
    assert "| format | missing_required_argument | 2 |" in card
    assert f"Job `{job_id}`" in card

    loaded = datasets.load_dataset(str(folder), split="train")
    rows = [json.loads(line) for line in expected.getvalue().splitlines()]
    assert loaded.num_rows == 4
    assert [row["messages"][-1] for row in loaded] == [row["messages"][-1] for row in rows]


def test_export_wants_one_target_and_push_needs_a_folder(sqlite_api: Api, tmp_path: Path) -> None:
    job_id, _ = finished_job(sqlite_api)
    code, _, err = invoke("export", job_id, "--url", sqlite_api.url)
    assert code == 2 and "give either --out FILE or --to-hf DIR" in one_line(err)
    code, _, err = invoke(
        "export", job_id, "--out", str(tmp_path / "a.jsonl"), "--to-hf", str(tmp_path / "b"),
        "--url", sqlite_api.url,
    )  # fmt: skip
    assert code == 2 and "give either --out FILE or --to-hf DIR" in one_line(err)
    code, _, err = invoke(
        "export", job_id, "--out", str(tmp_path / "a.jsonl"), "--push-to-hub", "me/travel",
        "--url", sqlite_api.url,
    )  # fmt: skip
    assert code == 2 and "give --to-hf DIR" in one_line(err)
    code, _, err = invoke(
        "export", job_id, "--to-hf", str(tmp_path / "c"), "--format", "bfcl",
        "--url", sqlite_api.url,
    )  # fmt: skip
    assert code == 2 and "cannot export in 'bfcl'" in one_line(err)


def test_run_refuses_what_the_api_refuses_with_the_apis_words(
    sqlite_api: Api, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(TRAVEL_CATALOG.read_text().replace("paths:", "paths: [", 1))
    refused = [
        (str(broken), "--n", "5"),
        (str(TRAVEL_CATALOG), "--n", "5", "--verify", "format,vibes"),
        (str(TRAVEL_CATALOG), "--n", "5", "--styles", "chatty=1"),
        (str(TRAVEL_CATALOG), "--n", "5", "--generator-options", '{"locale": "en\\u0000"}'),
    ]
    for number, args in enumerate(refused):
        code, _, submitted = invoke("submit", *args, "--url", sqlite_api.url)
        assert code == 2
        api_line = one_line(submitted)
        assert " answered 422: " in api_line, api_line
        detail = api_line.split(" answered 422: ", 1)[1]
        code, _, ran = invoke("run", *args, AF_DATA_DIR=str(tmp_path / f"data{number}"))
        assert code == 2
        assert one_line(ran).endswith(f" error: {detail}"), (args, ran)  # after the workers line

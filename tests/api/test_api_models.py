"""`/v1/models` over real HTTP, on SQLite and PostgreSQL: listing versions, asking for a training
run (202, 409 while one is queued, 422 for too few samples or a bad setting), downloading a
ready adapter as a .tar.gz; and the `actionforge models` and `train --job` commands against it.
The queued version is trained in this process by `maybe_train`, as a train worker would; a
version trained and evaluated on multi-turn samples stores, lists and charts the turn and
conversation accuracy."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
from api_support import Api, add_job, real_samples, running_api
from sqlalchemy import select
from tiny_model import cached_tiny_model
from typer.testing import CliRunner

from service.cli.commands.models import register_models_commands
from service.cli.commands.train import register_train_commands
from service.db.models import JobRecord, SampleRecord
from service.settings import Settings
from service.training.heldout import split_heldout
from service.training.runs import maybe_train
from unified.formats import read_samples
from unified.model import QueryStyle, Sample, Turn

OPENAI_CONVERSATIONS = (
    Path(__file__).resolve().parents[1] / "data" / "formats" / "openai_multi_turn_chat.jsonl"
)

TRAIN_CONFIG = "lora_r: 4\nlora_alpha: 8\nmax_steps: 2\nbatch_size: 4\nmax_length: 4096\n"

runner = CliRunner()


@pytest.fixture
def train_api(migrated_database_url: str, tmp_path: Path) -> Iterator[Api]:
    """An API of this test's own whose settings can train the tiny model."""
    config = tmp_path / "train.yaml"
    config.write_text(TRAIN_CONFIG)
    (tmp_path / "data").mkdir()  # `serve` makes it; the embedded queue's file goes there
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=migrated_database_url,
        api_keys=[],
        train_base_model=str(cached_tiny_model()),
        train_config=config,
        train_min_new_samples=100,
        train_heldout_fraction=0.25,
        train_eval_samples=3,
        train_eval_max_new_tokens=8,
    )
    with running_api(settings) as api:
        yield api


def cli(*args: str) -> tuple[int, str, str]:
    app = typer.Typer()
    register_models_commands(app)
    register_train_commands(app)
    result = runner.invoke(app, list(args), env={"AF_API_KEYS": ""})
    return result.exit_code, result.stdout, result.stderr


def add_accepted_job(api: Api, samples: list[Sample], job_id: str) -> tuple[str, list[str]]:
    """A finished job `job_id` on a new catalog whose samples are all accepted; (the catalog's
    id, the samples' ids). Fixed ids fix which samples are held out."""
    add_job(api.sessions, samples, job_id=job_id)
    with api.sessions() as session:
        job = session.get(JobRecord, job_id)
        assert job is not None
        ids = list(
            session.scalars(
                select(SampleRecord.id)
                .where(SampleRecord.job_id == job_id)
                .order_by(SampleRecord.position)
            )
        )
        return job.catalog_id, ids


def test_every_models_route_needs_a_known_key(own_api: Callable[..., Api]) -> None:
    api = own_api(api_keys=["k3y-for-the-models-tests-0123456"])
    routes = [
        ("GET", "/v1/models"),
        ("POST", "/v1/models/train"),
        ("GET", "/v1/models/some-id"),
        ("GET", "/v1/models/some-id/download"),
    ]
    for method, url in routes:
        assert api.http.request(method, url).status_code == 401, url
    paths = api.http.get("/openapi.json").json()["paths"]
    assert {path for path in paths if path.startswith("/v1/models")} == {
        "/v1/models",
        "/v1/models/train",
        "/v1/models/{version_id}",
        "/v1/models/{version_id}/download",
    }


@pytest.mark.slow
def test_train_list_and_download_a_version(train_api: Api, tmp_path: Path) -> None:
    http = train_api.http
    samples = real_samples()
    catalog_id, ids = add_accepted_job(train_api, samples, "job-models-4")
    trainable, heldout = split_heldout(ids, train_api.settings.train_heldout_fraction)
    assert len(trainable) == 6 and len(heldout) == 3, "the fixed ids hold out these 3"

    assert http.get("/v1/models").json() == {"data": [], "count": 0}
    unknown = http.get("/v1/models", params={"catalog_id": "nope"})
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == (
        "catalog 'nope' does not exist; list the catalogs with GET /v1/catalogs"
    )
    too_few = http.post("/v1/models/train", json={"catalog_id": catalog_id})
    assert too_few.status_code == 422
    assert "a run needs 100 (AF_TRAIN_MIN_NEW_SAMPLES) or force=true" in too_few.json()["detail"]
    bad = http.post(
        "/v1/models/train", json={"catalog_id": catalog_id, "force": True, "config": {"lr": 1}}
    )
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("override: unknown key 'lr'; ")

    queued = http.post("/v1/models/train", json={"catalog_id": catalog_id, "force": True})

    assert queued.status_code == 202, queued.text
    version = queued.json()
    assert queued.headers["Location"] == f"/v1/models/{version['id']}"
    assert (version["status"], version["version"], version["parent_id"]) == ("queued", 1, None)
    assert version["new_samples"] == len(trainable)
    again = http.post("/v1/models/train", json={"catalog_id": catalog_id, "force": True})
    assert again.status_code == 409
    assert again.json()["detail"] == (
        f"catalog '{catalog_id}' already has version 1 ({version['id']}) queued; wait until it "
        f"is ready or failed (GET /v1/models/{version['id']})"
    )
    early = http.get(f"/v1/models/{version['id']}/download")
    assert early.status_code == 409
    assert "is queued, not ready" in early.json()["detail"]
    assert http.get("/v1/models/nope").status_code == 404
    assert http.get("/v1/models/nope/download").status_code == 404

    trained = maybe_train(train_api.sessions, catalog_id, train_api.settings)

    assert trained is not None and trained.id == version["id"]
    listed = http.get("/v1/models", params={"catalog_id": catalog_id}).json()
    assert listed["count"] == 1
    [ready] = listed["data"]
    assert (ready["status"], ready["error"], ready["attempt"]) == ("ready", None, 1)
    assert ready["metrics"]["train"]["steps"] == 2
    assert ready["heldout_samples"] == len(heldout)
    assert ready["summary"]["accuracy"] == ready["metrics"]["eval"]["overall"]["accuracy"]
    assert http.get(f"/v1/models/{version['id']}").json() == ready

    download = http.get(f"/v1/models/{version['id']}/download")

    assert download.status_code == 200
    assert download.headers["content-type"] == "application/gzip"
    top = f"{catalog_id}-v1"
    assert download.headers["content-disposition"] == f'attachment; filename="{top}.tar.gz"'
    adapter = Path(ready["adapter_path"])
    with tarfile.open(fileobj=io.BytesIO(download.content), mode="r:gz") as archive:
        names = archive.getnames()
        assert f"{top}/adapter_config.json" in names
        for path in adapter.iterdir():
            member = archive.extractfile(f"{top}/{path.name}")
            assert member is not None and member.read() == path.read_bytes(), path.name
    assert len(names) == len(list(adapter.iterdir()))
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 4

    # The same through the CLI.
    code, out, err = cli("models", "--catalog", catalog_id, "--url", train_api.url)
    assert code == 0, err
    assert version["id"] in out and "ready" in out
    fetched = tmp_path / "a.tgz"
    code, out, err = cli(
        "models", "download", version["id"], "--out", str(fetched), "--url", train_api.url
    )
    assert code == 0, err
    assert fetched.read_bytes() == download.content
    code, out, err = cli("models", "train", catalog_id, "--url", train_api.url)
    assert code == 2
    assert "answered 422: catalog" in " ".join(err.split())


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_train_on_a_jobs_accepted_samples(train_api: Api, tmp_path: Path) -> None:
    samples = real_samples()[:5]
    job_id = "job-models-1"
    add_accepted_job(train_api, samples, job_id)
    out_dir = tmp_path / "adapter"

    code, _, err = cli(
        "train", "--job", job_id, "--url", train_api.url, "--model", str(cached_tiny_model()),
        "--config", str(train_api.settings.train_config), "--out", str(out_dir),
    )  # fmt: skip

    assert code == 0, err
    assert f"job {job_id}: 5 accepted samples" in err
    assert (out_dir / "adapter_config.json").is_file()
    metrics = json.loads((out_dir / "train_metrics.json").read_text())
    assert metrics["samples"] == 5
    code, _, err = cli("train", "--url", train_api.url, "--model", str(cached_tiny_model()))
    assert code == 2
    assert "either --data FILE or --job ID" in err


def multi_turn_job_samples() -> list[Sample]:
    """Three conversations made of pairs of real xLAM rows (the second row a follow-up turn),
    the three real multi-turn OpenAI chat examples, three single-turn xLAM rows."""
    rows = real_samples()
    made = [
        first.model_copy(
            update={
                "tools": [*first.tools, *(t for t in second.tools if t not in first.tools)],
                "turns": [Turn(query=second.query, steps=second.steps)],
                "meta": first.meta.model_copy(update={"style": QueryStyle.multi_turn}),
            }
        )
        for first, second in zip(rows[0:6:2], rows[1:6:2], strict=True)
    ]
    with read_samples(OPENAI_CONVERSATIONS, "openai") as reader:
        chats = list(reader)
    assert all(sample.turns for sample in [*made, *chats])
    return [*made, *chats, *rows[6:9]]


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_version_evaluated_on_conversations_lists_and_charts_their_accuracy(
    train_api: Api,
) -> None:
    http = train_api.http
    catalog_id, ids = add_accepted_job(train_api, multi_turn_job_samples(), "job-models-turns-6")
    _, heldout = split_heldout(ids, train_api.settings.train_heldout_fraction)
    assert [ids.index(i) for i in heldout] == [1, 3, 6], "two conversations and one single row"
    assert http.post("/v1/models/train", json={"catalog_id": catalog_id, "force": True}).is_success

    assert maybe_train(train_api.sessions, catalog_id, train_api.settings) is not None

    [ready] = http.get("/v1/models", params={"catalog_id": catalog_id}).json()["data"]
    assert ready["status"] == "ready", ready["error"]
    overall = ready["metrics"]["eval"]["overall"]
    assert (overall["samples"], overall["conversations"], overall["conversation_turns"]) == (
        2 + 2 + 1,
        2,
        4,
    )
    base = ready["metrics"]["base"]["report"]["overall"]
    assert base["conversations"] == 2
    for name in ("turn_accuracy", "conversation_accuracy"):
        assert ready["summary"][name] == overall[name]
        assert 0.0 <= overall[name] <= 1.0
    compared = {(d["group"], d["metric"]) for d in ready["metrics"]["compare"]["base"]}
    assert ("overall", "conversation_accuracy") in compared
    assert ("multi_turn", "turn_accuracy") in compared

    page = http.get("/models", params={"catalog_id": catalog_id, "metric": "turn_accuracy"})
    assert page.status_code == 200
    assert '<option value="turn_accuracy" selected>' in page.text
    assert f"{overall['turn_accuracy']:.3f}" in page.text

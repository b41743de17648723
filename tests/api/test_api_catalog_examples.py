"""Few-shot examples from a catalog's history: an llm job with `catalog_examples` shows the LLM
accepted samples of earlier jobs on the same catalog document, never held-out, rejected or
later ones, nor those of other catalogs. Real API over real HTTP, real database, the llm
generator talking to a scripted OpenAI-compatible server that records its prompts."""

from __future__ import annotations

import json
import uuid
from typing import Any

from api_support import TRAVEL_CATALOG, Api
from scripted_llm import Reply, scripted_llm_server
from sqlalchemy import select, update

from service.db.models import JobRecord, SampleRecord, SampleStatus
from service.pipeline.batches import generate_batch, verify_batch
from service.pipeline.catalog_examples import catalog_examples
from service.training.heldout import is_heldout

HELDOUT = 0.4  # large, so that a dozen samples surely hold some out


def upload(api: Api, document: bytes) -> str:
    response = api.http.post("/v1/catalogs", files={"file": (TRAVEL_CATALOG.name, document)})
    assert response.status_code == 201, response.text
    catalog_id: str = response.json()["id"]
    return catalog_id


def own_document() -> bytes:
    """The travel catalog made a document of its own (other tests' jobs are not its history)."""
    return TRAVEL_CATALOG.read_bytes() + f"\n# {uuid.uuid4().hex}\n".encode()


def submit(api: Api, catalog_id: str, **spec: Any) -> str:
    body = {"catalog_id": catalog_id, "seed": 3, "verify": ["format"], **spec}
    response = api.http.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def run_template_job(api: Api, catalog_id: str, n: int) -> list[SampleRecord]:
    """A template job run by the engine's own steps; its samples in position order."""
    job_id = submit(api, catalog_id, n=n, batch_size=n, generator="template")
    assert generate_batch(api.sessions, f"{job_id}-000000")
    assert verify_batch(api.sessions, f"{job_id}-000000")
    with api.sessions() as session:
        return list(
            session.scalars(
                select(SampleRecord)
                .where(SampleRecord.job_id == job_id)
                .order_by(SampleRecord.position)
            )
        )


def job(api: Api, job_id: str) -> JobRecord:
    with api.sessions() as session:
        record = session.get(JobRecord, job_id)
        assert record is not None
        return record


def test_examples_are_earlier_accepted_samples_of_the_same_document_newest_job_first(
    api: Api,
) -> None:
    document = own_document()
    older = run_template_job(api, upload(api, document), n=6)
    newer = run_template_job(api, upload(api, document), n=6)
    other_catalog = run_template_job(api, upload(api, own_document()), n=6)
    rejected = newer[1].id
    with api.sessions() as session:
        session.execute(
            update(SampleRecord)
            .where(SampleRecord.id == rejected)
            .values(status=SampleStatus.rejected)
        )
        session.commit()
    # The same document uploaded once more: a job on it sees both earlier jobs.
    current = job(api, submit(api, upload(api, document), n=2, generator="template"))
    later = run_template_job(api, upload(api, document), n=3)

    with api.sessions() as session:
        everything = catalog_examples(session, current, limit=100, heldout_fraction=HELDOUT)
        first_three = catalog_examples(session, current, limit=3, heldout_fraction=HELDOUT)
        none = catalog_examples(session, current, limit=0, heldout_fraction=HELDOUT)

    expected = [
        sample.id
        for sample in newer + older
        if sample.status == SampleStatus.accepted
        and sample.id != rejected
        and not is_heldout(sample.id, HELDOUT)
    ]
    assert any(is_heldout(sample.id, HELDOUT) for sample in newer + older), "none held out"
    assert [example["id"] for example in everything] == expected
    assert [example["id"] for example in first_three] == expected[:3]
    assert none == []
    seen = {example["id"] for example in everything}
    assert not seen & {sample.id for sample in other_catalog + later}


def prompt_text(body: dict[str, Any]) -> str:
    return "\n".join(str(message.get("content", "")) for message in body.get("messages", []))


def test_an_llm_job_shows_the_model_its_catalogs_accepted_samples(api: Api) -> None:
    document = own_document()
    history = run_template_job(api, upload(api, document), n=24)
    usable = [
        s for s in history if s.status == SampleStatus.accepted and not is_heldout(s.id, HELDOUT)
    ]
    heldout = [s for s in history if is_heldout(s.id, HELDOUT)]
    assert usable and heldout

    answer = json.dumps({"query": "What is the weather in Oslo?", "calls": []})
    with scripted_llm_server(lambda body: Reply(answer)) as server:
        options = {
            "backend": "openai",
            "model": "scripted",
            "base_url": server.base_url,
            "catalog_examples": 1000,
            "num_examples": 3,
        }
        job_id = submit(
            api,
            upload(api, document),
            n=6,
            batch_size=6,
            generator="llm",
            styles={"simple": 1.0},
            generator_options=options,
        )
        assert generate_batch(api.sessions, f"{job_id}-000000", heldout_fraction=HELDOUT)
        prompts = [prompt_text(body) for body in server.requests]

    assert prompts
    queries = {s.data["query"] for s in usable}
    shown = {query for query in queries if any(query in prompt for prompt in prompts)}
    assert shown, "no prompt shows an accepted sample of the catalog"
    usable_queries = {s.data["query"] for s in usable}
    for sample in heldout:
        if sample.data["query"] in usable_queries:
            continue  # the same query also came as a usable sample
        assert not any(sample.data["query"] in prompt for prompt in prompts), sample.id

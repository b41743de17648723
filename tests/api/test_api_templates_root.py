"""A job's `generator_options.templates_dir` names a folder under the service's templates root
(`AF_TEMPLATES_ROOT`, default `<data_dir>/templates`): a client cannot make a worker read
templates anywhere else on the server, and no error it gets names a server path."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from api_support import add_catalog
from served_api import Api
from sqlalchemy import select

from generators.template.phrasebook import bundled_templates_dir
from service.db.models import SampleRecord
from service.pipeline.batches import generate_batch
from unified.errors import ActionForgeError


def post(api: Api, catalog_id: str, templates_dir: object) -> tuple[int, Any]:
    body = {
        "catalog_id": catalog_id,
        "n": 12,
        "generator_options": {"templates_dir": templates_dir},
    }
    response = api.http.post("/v1/jobs", json=body)
    return response.status_code, response.json()


def test_templates_dir_is_a_folder_name_under_the_templates_root(api: Api) -> None:
    root = api.settings.resolved_templates_root()
    mine = root / "mine"
    shutil.copytree(bundled_templates_dir(), mine)
    (mine / "simple.j2").write_text(
        '{%- from "_phrases.j2" import ask_text, sentence -%}\n'
        '{{ sentence("Kindly {ask}.", ask_text(asks[0], choose)) }}\n'
    )
    outside = root.parent / "elsewhere"
    shutil.copytree(bundled_templates_dir(), outside)
    (root / "link").symlink_to(outside, target_is_directory=True)
    catalog_id = add_catalog(api.sessions)

    code, job = post(api, catalog_id, "mine")
    assert code == 202, job
    assert job["spec"]["generator_options"]["templates_dir"] == "mine"  # stored as given
    assert generate_batch(api.sessions, f"{job['id']}-000000", templates_root=root)
    with api.sessions() as session:
        rows = session.scalars(select(SampleRecord.data).where(SampleRecord.job_id == job["id"]))
        queries = [row["query"] for row in rows]
    assert any(query.startswith("Kindly ") for query in queries), queries  # the root's templates

    refusals = {
        str(outside): f"generator_options.templates_dir: {str(outside)!r} is not a folder name",
        "../elsewhere": "generator_options.templates_dir: '../elsewhere' is not a folder name",
        "link": "generator_options.templates_dir: 'link' leads out of the templates root",
        "missing": "generator_options.templates_dir: no folder 'missing' under the templates root",
        "": "generator_options.templates_dir: give the name of a folder under the templates root",
    }
    for given, start in refusals.items():
        code, body = post(api, catalog_id, given)
        assert (code, body["detail"][: len(start)]) == (422, start), given


def test_a_job_whose_templates_are_broken_fails_without_naming_server_paths(api: Api) -> None:
    """Templates are checked where they are used (a worker may see other files than the API):
    the job fails, and its error names the file under the root, not where the root is."""
    root = api.settings.resolved_templates_root()
    broken = root / "broken"
    shutil.copytree(bundled_templates_dir(), broken)
    (broken / "simple.j2").unlink()
    code, job = post(api, add_catalog(api.sessions), "broken")
    assert code == 202, job
    with pytest.raises(ActionForgeError) as raised:
        generate_batch(api.sessions, f"{job['id']}-000000", templates_root=root)
    error = str(raised.value)
    assert error.startswith("<templates root>/broken/simple.j2: template missing; ")
    assert "<bundled templates>" in error
    assert str(root.resolve()) not in error and str(bundled_templates_dir()) not in error

"""`GET /v1/jobs/{id}/export`: stream a job's accepted samples in an export format of
`service.export.registry` (a dataset format as JSON Lines, Parquet, DPO preference pairs, or one
a plugin adds)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from service.api.deps import JobDep, SessionsDep
from service.api.documented_errors import not_found, refused
from service.db.models import FINISHED
from service.errors import InvalidRequest
from service.export.base import PARQUET_MEDIA_TYPE, Exporter
from service.export.json_lines import JSON_LINES_MEDIA_TYPE
from service.export.registry import export_format_names, exporter
from unified.errors import UnknownNameError

router = APIRouter(prefix="/jobs", tags=["export"])

JOB_STATUS_HEADER = "X-Job-Status"
COMPLETE_HEADER = "X-Export-Complete"


def chosen_exporter(
    fmt: Annotated[
        str,
        Query(
            alias="format",
            description=f"Export format: {', '.join(export_format_names())}, or one a plugin "
            "adds; an unknown one is answered 422 with the known ones.",
        ),
    ] = "unified",
) -> Exporter:
    """The exporter of the requested format; 422 naming the known formats for an unknown one."""
    try:
        return exporter(fmt)
    except UnknownNameError as exc:
        raise InvalidRequest(f"query parameter 'format': {exc}; use one of those") from None


ExporterDep = Annotated[Exporter, Depends(chosen_exporter)]


@router.get(
    "/{job_id}/export",
    response_class=StreamingResponse,
    responses={
        200: {
            # The built-in media types; a plug-in format streams under its own (loading every
            # plug-in here would let a broken one stop the API from starting).
            "content": {JSON_LINES_MEDIA_TYPE: {}, PARQUET_MEDIA_TYPE: {}},
            "description": (
                "The accepted samples, streamed in position order; with format=dpo, one "
                "preference pair {prompt, chosen, rejected, tools} per accepted sample."
            ),
        },
        **not_found("No job has the id."),
        **refused(
            "The format is unknown (the detail lists those known), or a parameter is not valid."
        ),
    },
)
def export_job(sessions: SessionsDep, job: JobDep, chosen: ExporterDep) -> StreamingResponse:
    """Stream the samples accepted so far, in position order.

    A job that has not finished can be exported too: the file holds what is accepted when each
    chunk is read. The `X-Job-Status` header gives the job's status when the export started and
    `X-Export-Complete` whether that status was final (succeeded, failed or cancelled).

    `format=dpo` gives DPO JSON Lines in TRL's conversational form: the chosen side is an accepted
    sample, the rejected side one of the job's rejected samples of the same query or a
    perturbation of the chosen sample that the format verifier rejects.
    """
    body = chosen.job_bytes(sessions, job.id)
    headers = {
        "Content-Disposition": f'attachment; filename="{chosen.file_name(job.id)}"',
        JOB_STATUS_HEADER: job.status,
        COMPLETE_HEADER: "true" if job.status in FINISHED else "false",
    }
    return StreamingResponse(body, media_type=chosen.media_type, headers=headers)

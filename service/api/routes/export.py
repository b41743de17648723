"""`GET /v1/jobs/{id}/export`: stream a job's accepted samples as a dataset file, or as DPO
preference pairs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from service.api.deps import JobDep, SessionsDep
from service.api.schemas import Message
from service.db.models import FINISHED
from service.export.stream import file_name, job_export_bytes, media_type
from service.pipeline.spec import ExportFormat

router = APIRouter(prefix="/jobs", tags=["export"])

JOB_STATUS_HEADER = "X-Job-Status"
COMPLETE_HEADER = "X-Export-Complete"


@router.get(
    "/{job_id}/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/x-ndjson": {}, "application/vnd.apache.parquet": {}},
            "description": (
                "The accepted samples, streamed in position order; with format=dpo, one "
                "preference pair {prompt, chosen, rejected} per accepted sample."
            ),
        },
        404: {"model": Message},
    },
)
def export_job(
    sessions: SessionsDep,
    job: JobDep,
    fmt: Annotated[
        ExportFormat, Query(alias="format", description="Dataset format of the file.")
    ] = "unified",
) -> StreamingResponse:
    """Stream the samples accepted so far, in position order.

    A job that has not finished can be exported too: the file holds what is accepted when each
    chunk is read. The `X-Job-Status` header gives the job's status when the export started and
    `X-Export-Complete` whether that status was final (succeeded, failed or cancelled).

    `format=dpo` gives DPO JSON Lines in TRL's conversational form: the chosen side is an accepted
    sample, the rejected side one of the job's rejected samples of the same query or a
    perturbation of the chosen sample that the format verifier rejects.
    """
    body = job_export_bytes(sessions, job.id, fmt)
    headers = {
        "Content-Disposition": f'attachment; filename="{file_name(job.id, fmt)}"',
        JOB_STATUS_HEADER: job.status,
        COMPLETE_HEADER: "true" if job.status in FINISHED else "false",
    }
    return StreamingResponse(body, media_type=media_type(fmt), headers=headers)

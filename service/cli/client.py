"""An HTTP client of the REST API, used by the CLI's `submit`, `status`, `export` and `run`."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import SSEError, connect_sse
from pydantic import ValidationError

from service.api.deps import API_KEY_HEADER
from service.api.model_schemas import ModelVersionPublic, ModelVersionsPublic
from service.api.routes.events import FINISHED_EVENT
from service.api.schemas import (
    CatalogPublic,
    CatalogUploaded,
    JobProgress,
    JobPublic,
    SamplePublic,
    SamplesPublic,
)
from service.db.models import FINISHED
from service.export.registry import exporter
from service.pipeline.spec import JobSpec
from service.settings import Settings
from unified.errors import ActionForgeError, UnknownNameError
from unified.model import Sample

DEFAULT_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.5
# The most samples GET /v1/jobs/{id}/samples gives per page.
MAX_PAGE = 1000


class ApiError(ActionForgeError):
    """The API refused a request; the message is the API's own explanation."""

    def __init__(self, status_code: int, method: str, url: str, detail: str) -> None:
        self.status_code = status_code
        self.detail = detail
        super().__init__(f"{method} {url} answered {status_code}: {detail}")


class _NoEventStream(Exception):
    """The server has no event stream route."""


def _names_a_job(response: httpx.Response, job_id: str) -> bool:
    """Whether a 404 is the API's answer for an unknown job (not one for an unknown route)."""
    response.read()
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return False
    return isinstance(detail, str) and f"job '{job_id}'" in detail


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the file, its rows and size, and the job's status when it began."""

    path: Path
    rows: int
    bytes_written: int
    job_status: str
    complete: bool


class ActionForgeClient:
    """Calls the ActionForge API at `base_url`, sending `api_key` as X-API-Key when given.

    Connection failures and 4xx/5xx answers raise `ActionForgeError`s whose message says what
    went wrong and, for the API's own refusals, what to change.
    """

    def __init__(
        self, base_url: str, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {API_KEY_HEADER: api_key} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> ActionForgeClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def health(self) -> dict[str, Any]:
        """The API's health answer."""
        result: dict[str, Any] = self._request("GET", "/v1/health").json()
        return result

    def upload_catalog(self, path: Path, kind: str | None = None) -> CatalogUploaded:
        """Upload a catalog file; the API loads and stores it."""
        with path.open("rb") as stream:
            files = {"file": (path.name, stream, "application/octet-stream")}
            data = {"kind": kind} if kind else {}
            response = self._request("POST", "/v1/catalogs", files=files, data=data)
        return CatalogUploaded.model_validate_json(response.content)

    def submit_job(self, catalog_id: str, spec: JobSpec | dict[str, Any]) -> JobPublic:
        """Submit a job over a stored catalog; a spec given as a dict is checked by the API."""
        fields = (
            spec.model_dump(mode="json", exclude_none=True) if isinstance(spec, JobSpec) else spec
        )
        body = {**fields, "catalog_id": catalog_id}
        return JobPublic.model_validate_json(self._request("POST", "/v1/jobs", json=body).content)

    def job(self, job_id: str) -> JobPublic:
        """A job as it stands now."""
        return JobPublic.model_validate_json(self._request("GET", f"/v1/jobs/{job_id}").content)

    def catalog(self, catalog_id: str) -> CatalogPublic:
        """A stored catalog with its tools."""
        response = self._request("GET", f"/v1/catalogs/{catalog_id}")
        return CatalogPublic.model_validate_json(response.content)

    def cancel_job(self, job_id: str) -> JobPublic:
        """Cancel a job."""
        response = self._request("POST", f"/v1/jobs/{job_id}/cancel")
        return JobPublic.model_validate_json(response.content)

    def samples(
        self,
        job_id: str,
        *,
        status: str | None = None,
        reason: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> SamplesPublic:
        """One page of a job's samples."""
        params = {"status": status, "reason": reason, "limit": limit, "cursor": cursor}
        response = self._request(
            "GET",
            f"/v1/jobs/{job_id}/samples",
            params={k: v for k, v in params.items() if v is not None},
        )
        return SamplesPublic.model_validate_json(response.content)

    def first_samples(
        self,
        job_id: str,
        limit: int,
        *,
        status: str | None = None,
        reason: str | None = None,
    ) -> tuple[list[SamplePublic], int]:
        """Up to `limit` of a job's samples in position order, page after page, and how many
        match the filters in all."""
        found: list[SamplePublic] = []
        cursor: str | None = None
        count = 0
        while len(found) < limit:
            page = self.samples(
                job_id,
                status=status,
                reason=reason,
                limit=min(limit - len(found), MAX_PAGE),
                cursor=cursor,
            )
            found += page.data
            count = page.count
            cursor = page.next_cursor
            if cursor is None:
                break
        return found, count

    def wait(
        self,
        job_id: str,
        on_update: Callable[[JobPublic], object] = lambda _job: None,
        interval: float = POLL_INTERVAL_S,
    ) -> JobPublic:
        """Follow a job until it has finished, calling `on_update` with each state seen: from
        its event stream (`GET /v1/jobs/{id}/events`), and by polling `GET /v1/jobs/{id}`
        every `interval` seconds once the stream breaks off (or the server has none)."""
        try:
            finished = self._follow_events(job_id, on_update)
        except (httpx.TransportError, SSEError, ValidationError, _NoEventStream):
            finished = None
        if finished is not None:
            return finished
        while True:
            job = self.job(job_id)
            on_update(job)
            if job.status in FINISHED:
                return job
            time.sleep(interval)

    def _follow_events(
        self, job_id: str, on_update: Callable[[JobPublic], object]
    ) -> JobPublic | None:
        """The job's final state from its event stream, or None when the stream ended first."""
        url = f"/v1/jobs/{job_id}/events"
        # No read timeout: an idle stream gets a comment line every 15 s, not data.
        with connect_sse(self._http, "GET", url, timeout=httpx.Timeout(10.0, read=None)) as source:
            response = source.response
            if response.status_code in {404, 405} and not _names_a_job(response, job_id):
                raise _NoEventStream  # a server older than the route
            if response.is_error:
                response.read()
                self._raise_for(response)
            for event in source.iter_sse():
                job = JobProgress.model_validate_json(event.data)
                on_update(job)
                if event.event == FINISHED_EVENT:
                    return job
        return None

    def export(self, job_id: str, fmt: str, out: Path) -> ExportResult:
        """Stream a job's accepted samples in `fmt` into the file `out`.

        The bytes go to `<out>.partial`, renamed to `out` once the whole export has arrived.
        """
        written, lines, headers = self._stream_into(
            f"/v1/jobs/{job_id}/export", out, params={"format": fmt}
        )
        rows = _rows_in(out, fmt, lines)
        job_status = headers.get("X-Job-Status", "unknown")
        complete = headers.get("X-Export-Complete") == "true"
        return ExportResult(out, rows, written, job_status, complete)

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.is_error:
            self._raise_for(response)
        return response

    def _unreachable(self, exc: httpx.TransportError) -> ActionForgeError:
        return ActionForgeError(
            f"cannot reach the ActionForge API at {self.base_url} ({exc or type(exc).__name__}); "
            "start it with `actionforge serve`, or point AF_API_URL (or --url) at a running one"
        )

    def _raise_for(self, response: httpx.Response) -> None:
        try:
            detail: Any = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = None
        if not isinstance(detail, str):
            detail = (detail and str(detail)) or response.text.strip() or response.reason_phrase
        raise ApiError(
            response.status_code, response.request.method, response.request.url.path, detail
        )

    # --- model versions (/v1/models) and training data ----------------------------------

    def models(self, catalog_id: str | None = None, limit: int = 1000) -> ModelVersionsPublic:
        """Model versions with their metrics, newest first (one catalog's, when given)."""
        params: dict[str, Any] = {"limit": limit}
        if catalog_id is not None:
            params["catalog_id"] = catalog_id
        response = self._request("GET", "/v1/models", params=params)
        return ModelVersionsPublic.model_validate_json(response.content)

    def model(self, version_id: str) -> ModelVersionPublic:
        """One model version as it stands now."""
        response = self._request("GET", f"/v1/models/{version_id}")
        return ModelVersionPublic.model_validate_json(response.content)

    def request_training(
        self, catalog_id: str, *, force: bool = False, config: dict[str, Any] | None = None
    ) -> ModelVersionPublic:
        """Queue a training run of the catalog's next model version."""
        body = {"catalog_id": catalog_id, "force": force, "config": config or {}}
        response = self._request("POST", "/v1/models/train", json=body)
        return ModelVersionPublic.model_validate_json(response.content)

    def download_model(self, version_id: str, out: Path) -> int:
        """Stream a ready version's adapter (.tar.gz) into `out`; the bytes written. Written to
        `<out>.partial` first and renamed once complete."""
        written, _, _ = self._stream_into(f"/v1/models/{version_id}/download", out)
        return written

    def _stream_into(
        self, url: str, out: Path, params: dict[str, str] | None = None
    ) -> tuple[int, int, httpx.Headers]:
        """GET `url` into the file `out` through `<out>.partial`, renamed once the whole body
        has arrived (removed on any failure); the bytes and newlines written, and the response
        headers."""
        partial = out.with_name(out.name + ".partial")
        try:
            with self._http.stream("GET", url, params=params) as response:
                if response.is_error:
                    response.read()
                    self._raise_for(response)
                written = lines = 0
                with partial.open("wb") as sink:
                    for piece in response.iter_bytes():
                        written += sink.write(piece)
                        lines += piece.count(b"\n")
            os.replace(partial, out)
        except httpx.TransportError as exc:
            partial.unlink(missing_ok=True)
            raise self._unreachable(exc) from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return written, lines, response.headers

    def accepted_samples(self, job_id: str) -> list[Sample]:
        """Every accepted sample of a job, in position order, fetched page by page."""
        found, _ = self.first_samples(job_id, sys.maxsize, status="accepted")
        return [item.sample for item in found]


def _rows_in(path: Path, fmt: str, lines: int) -> int:
    """The rows of the export in `fmt` written to `path`: counted by the format's exporter where
    they are not one per line (Parquet), else the `lines` received. A format this installation
    does not know, one only the server's plugins add, is taken to be one row per line."""
    try:
        count_rows = exporter(fmt).count_rows
    except UnknownNameError:
        return lines
    return count_rows(path) if count_rows is not None else lines


def client_for(settings: Settings, url: str | None = None) -> ActionForgeClient:
    """A client of the API at `url` (default: AF_API_URL) with the first of AF_API_KEYS."""
    keys = settings.api_keys
    return ActionForgeClient(url or settings.api_url, api_key=keys[0] if keys else None)

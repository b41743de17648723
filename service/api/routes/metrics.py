"""`GET /metrics`: Prometheus metrics of the whole service on this machine (see
`service.metrics`).

With AF_API_KEYS set it needs a key like every route but health, sent the way Prometheus's
`authorization` setting sends one (`Authorization: Bearer KEY`) or in `X-API-Key`;
AF_METRICS_PUBLIC=true serves it without one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from sqlalchemy.orm import Session, sessionmaker

from service.api.deps import API_KEY_HEADER, SettingsDep, is_known_key
from service.metrics.multiprocess import RecordedMetrics
from service.metrics.scraped import ServiceState
from service.settings import Settings

router = APIRouter(tags=["metrics"])

_bearer = HTTPBearer(
    auto_error=False,
    description="One of the keys in AF_API_KEYS, as Prometheus sends it; not needed when "
    "AF_API_KEYS is empty or AF_METRICS_PUBLIC is true.",
)
_api_key = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="One of the keys in AF_API_KEYS; not needed when AF_API_KEYS is empty.",
)


def metrics_registry(sessions: sessionmaker[Session], settings: Settings) -> CollectorRegistry:
    """What a scrape reads: the counts of every process (`RecordedMetrics`) and the service's
    state now (`ServiceState`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RecordedMetrics())
    registry.register(ServiceState(sessions, settings))
    return registry


def require_metrics_key(
    settings: SettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    api_key: Annotated[str | None, Security(_api_key)],
) -> None:
    """Refuse the scrape with 401 unless it carries a configured key, when keys are set and
    the metrics are not public."""
    if not settings.api_keys or settings.metrics_public:
        return
    key = bearer.credentials if bearer is not None else api_key
    if key is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing an API key; send one of the keys set in AF_API_KEYS as "
            f"'Authorization: Bearer KEY' or in the {API_KEY_HEADER} header (or set "
            "AF_METRICS_PUBLIC=true to serve /metrics without one)",
        )
    if not is_known_key(key, settings):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the key sent is one this server does not know; send one of the keys set in "
            "AF_API_KEYS",
        )


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Metrics in Prometheus's text format (OpenMetrics when the Accept "
            "header asks for it).",
        }
    },
)
def metrics(request: Request) -> Response:
    """The service's Prometheus metrics: samples generated, accepted and rejected by stage and
    reason, stage and generation seconds, LLM requests, tokens and errors per server, export
    rows (counted by every process sharing this machine's metrics folder), and jobs by status
    and messages waiting per queue (read now)."""
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(request.app.state.metrics_registry), media_type=content_type)

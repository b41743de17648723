"""The model versions (`/models`): per catalog, overall held-out accuracy by version, and each
version's metrics per query style beside the base model's and its previous version's; read
with the REST route's own function."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from service.api.deps import SessionDep
from service.api.model_schemas import ModelVersionPublic
from service.api.routes.models import list_versions
from service.dashboard.catalog_pages import catalog_names
from service.dashboard.charts import overall_by_version, version_comparison
from service.dashboard.rendering import PageRoute, render
from service.errors import InvalidRequest
from trainer.evaluate import METRICS

router = APIRouter(route_class=PageRoute, include_in_schema=False)

VERSIONS_SHOWN = 200


@router.get("/models")
def models_page(
    request: Request,
    session: SessionDep,
    catalog_id: str | None = None,
    metric: Annotated[str, Query()] = "accuracy",
) -> Response:
    """The newest model versions grouped by catalog, with their charts of `metric`."""
    if metric not in METRICS:
        raise InvalidRequest(
            f"query parameter 'metric' ({metric!r}) is not one of: {', '.join(METRICS)}; "
            "pick one of those"
        )
    page = list_versions(
        session, catalog_id=catalog_id or None, version_status=None, limit=VERSIONS_SHOWN, offset=0
    )
    catalogs: dict[str, list[ModelVersionPublic]] = {}
    for version in page.data:
        catalogs.setdefault(version.catalog_id, []).append(version)
    context = {
        "catalogs": [
            {
                "id": catalog,
                "versions": versions,
                "overall": overall_by_version([(v.version, v.metrics) for v in versions], metric),
                "comparisons": {
                    v.id: version_comparison(v.metrics, v.version, metric) for v in versions
                },
            }
            for catalog, versions in catalogs.items()
        ],
        "count": page.count,
        "shown": len(page.data),
        "metrics": METRICS,
        "metric": metric,
        "catalog_id": catalog_id or "",
        "catalog_names": catalog_names(session, set(catalogs)),
    }
    return render(request, "models.html", context)

"""The REST API: catalogs, jobs, their samples and exports, under `/v1`."""

from service.api.app import create_app

__all__ = ["create_app"]

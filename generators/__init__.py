"""Turn (a generation request, a catalog's tools) into candidate samples."""

from generators.base import GENERATORS, GenerationRequest, Generator

__all__ = ["GENERATORS", "GenerationRequest", "Generator"]

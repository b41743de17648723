"""Turn (a generation request, a catalog's tools) into candidate samples."""

from generators.base import (
    GENERATORS,
    GenerationRequest,
    GenerationUsage,
    Generator,
    GeneratorBase,
    load_generator,
)

__all__ = [
    "GENERATORS",
    "GenerationRequest",
    "GenerationUsage",
    "Generator",
    "GeneratorBase",
    "load_generator",
]

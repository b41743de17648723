"""The export formats a job can be downloaded in, by name: `EXPORTERS`.

Its names are every writable dataset format of `unified.formats.FORMATS`, each exported as JSON
Lines (`service.export.json_lines`), and the exporters registered here: `unified` (the stored
JSON streamed out, `service.export.unified`), `parquet` and `dpo` built in, others added by
packages through the `actionforge.exporters` entry point group (an entry point naming an
`Exporter`) or at runtime with `EXPORTERS.register(name, "module:attr")`.
An exporter registered here wins over a dataset format of the same name.

Dataset formats are asked for at each lookup, not copied at import: a format added to `FORMATS`
(by its own entry point or `FORMATS.register`) can be exported as soon as it is there.
"""

from __future__ import annotations

from service.export.base import Exporter
from service.export.json_lines import json_lines_exporter
from unified.errors import ActionForgeError, UnknownNameError
from unified.formats import FORMATS, writable_formats
from unified.registry import Registry


class ExporterRegistry(Registry):
    """A `Registry` of `Exporter`s that also holds a JSON Lines exporter per writable dataset
    format of `FORMATS`."""

    def names(self) -> list[str]:
        """Every export format's name, sorted."""
        return sorted({*super().names(), *writable_formats()})

    def get(self, name: str) -> Exporter:
        """The exporter of `name`; `UnknownNameError` naming the known ones if there is none."""
        if name in super().names():
            found = super().get(name)
            if not isinstance(found, Exporter):
                raise ActionForgeError(
                    f"the {self.what} '{name}' is registered as a {type(found).__name__}, not "
                    "an Exporter; register a service.export.base.Exporter under that name"
                )
            return found
        if name in FORMATS.names():
            dataset_format = FORMATS.get(name)
            if hasattr(dataset_format, "write"):
                return json_lines_exporter(name, dataset_format)
        raise UnknownNameError(f"Unknown {self.what} '{name}'. Known: {', '.join(self.names())}")


EXPORTERS = ExporterRegistry(
    "export format",
    {
        "unified": "service.export.unified:EXPORTER",
        "parquet": "service.export.parquet:EXPORTER",
        "dpo": "service.export.dpo:EXPORTER",
    },
    "actionforge.exporters",
)


def export_format_names() -> list[str]:
    """The names of the formats a job can be exported in, sorted."""
    return EXPORTERS.names()


def exporter(name: str) -> Exporter:
    """The exporter of format `name`; `UnknownNameError` naming the known ones if there is none."""
    return EXPORTERS.get(name)

"""Values for JSON Schemas: sampled by kind, format and bounds. Pure; the generators draw
arguments from it and the mock APIs draw responses."""

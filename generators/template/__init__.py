"""The template generator: samples of every query style from Jinja templates, without an LLM."""

"""Jinja templates that ship with ActionForge (data, not code); one directory per user."""

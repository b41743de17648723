"""The job queue: a Celery app built from Settings and thin tasks that handle one batch."""

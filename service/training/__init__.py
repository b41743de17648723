"""Continual training in the service: runs, their data and configuration, model versions with
their lease, outcome, evaluation and files, and the held-out split."""

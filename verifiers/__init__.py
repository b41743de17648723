"""Staged checks that judge samples and say why a rejected one failed."""

from verifiers.format import FormatVerifier
from verifiers.verdict import Reason, Verdict

__all__ = ["FormatVerifier", "Reason", "Verdict"]

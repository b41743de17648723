"""DPO exports: each accepted sample (chosen) paired with a wrong answer to the same query
(rejected), as JSON Lines in TRL's conversational form.

The rejected side is one of the job's rejected samples of that query, with the verdict stored by
the stage that rejected it, or else a perturbation of the chosen sample that the format verifier
rejects (`service.export.preference.build_pairs`). Rejected samples are never all held in memory:
before the first chunk, one pass over the job's rejected samples reads only their query text and
keeps, per usable rejected sample, an 8-byte hash of the query and its position — 16 bytes each,
16 MB for a million — sorted for binary search (`RejectedIndex`). Each chunk of accepted samples
then looks up its queries and reads at most `DPO_CANDIDATES_PER_QUERY` rejected samples per
distinct query, with their verdicts, in short sessions of their own. The pairs' choices are seeded
by the job's seed: the same job gives the same bytes.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Text, and_, cast, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import CatalogRecord, JobRecord, SampleRecord, SampleStatus, VerdictRecord
from service.export.accepted import DEFAULT_CHUNK_SIZE, accepted_chunks
from service.export.base import Exporter
from service.export.json_lines import JSON_LINES_MEDIA_TYPE, JSON_LINES_SUFFIX
from service.export.preference import NOT_WRONG_REASONS, build_pairs, query_key, write_pairs
from service.metrics.recorded import count_export_rows
from unified.errors import ActionForgeError
from unified.model import Sample, Tool
from verifiers.format import FormatVerifier
from verifiers.verdict import Verdict

DPO_CANDIDATES_PER_QUERY = 4
"""The most rejected samples of one query read for a chunk; the pair picks one of them."""
QUERY_INDEX_PAGE = 10_000
"""Rejected samples whose query text is read per session while indexing them."""
_NOT_WRONG = sorted(NOT_WRONG_REASONS)


def _query_hash(query: str) -> int:
    digest = hashlib.blake2b(query_key(query).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@dataclass(frozen=True)
class RejectedIndex:
    """The positions of a job's usable rejected samples by the hash of their query.

    `hashes` is sorted and `positions` ascending among equal hashes. A hash collision only
    brings a sample of another query along, which `build_pairs` then ignores.
    """

    hashes: np.ndarray
    positions: np.ndarray

    def __len__(self) -> int:
        return len(self.hashes)

    def candidates(self, query: str, limit: int = DPO_CANDIDATES_PER_QUERY) -> list[int]:
        """The positions of the first `limit` rejected samples of `query`."""
        key = np.uint64(_query_hash(query))
        start = int(np.searchsorted(self.hashes, key, side="left"))
        end = int(np.searchsorted(self.hashes, key, side="right"))
        return [int(p) for p in self.positions[start : min(end, start + limit)]]


def rejected_index(
    sessions: sessionmaker[Session], job_id: str, *, page_size: int = QUERY_INDEX_PAGE
) -> RejectedIndex:
    """Index the job's rejected samples whose rejection says the answer is wrong (not those in
    `NOT_WRONG_REASONS`, e.g. duplicates); reads only their query text, a page at a time."""
    hash_pages: list[np.ndarray] = []
    position_pages: list[np.ndarray] = []
    after = -1
    while True:
        with sessions() as session:
            rows = session.execute(
                select(SampleRecord.position, SampleRecord.data["query"].as_string())
                .where(
                    SampleRecord.job_id == job_id,
                    SampleRecord.status == SampleStatus.rejected,
                    SampleRecord.position > after,
                    SampleRecord.reason.is_(None) | SampleRecord.reason.not_in(_NOT_WRONG),
                )
                .order_by(SampleRecord.position)
                .limit(page_size)
            ).all()
        if rows:
            hashes = (_query_hash(query or "") for _, query in rows)
            hash_pages.append(np.fromiter(hashes, dtype=np.uint64, count=len(rows)))
            positions = (position for position, _ in rows)
            position_pages.append(np.fromiter(positions, dtype=np.int64, count=len(rows)))
        if len(rows) < page_size:
            break
        after = rows[-1].position
    if not hash_pages:
        return RejectedIndex(np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64))
    hashes = np.concatenate(hash_pages)
    positions = np.concatenate(position_pages)
    order = np.lexsort((positions, hashes))
    return RejectedIndex(hashes[order], positions[order])


def rejected_samples(
    sessions: sessionmaker[Session],
    job_id: str,
    positions: Sequence[int],
    *,
    page_size: int = DEFAULT_CHUNK_SIZE,
) -> list[tuple[Sample, Verdict]]:
    """The job's rejected samples at `positions`, each with the verdict of the stage that
    rejected it (from the verdicts table; the sample's own stage and reason where none is
    stored), in position order; `page_size` positions per query."""
    found: list[tuple[Sample, Verdict]] = []
    wanted = sorted(set(positions))
    for start in range(0, len(wanted), page_size):
        page = wanted[start : start + page_size]
        with sessions() as session:
            rows = session.execute(
                select(
                    cast(SampleRecord.data, Text),
                    SampleRecord.stage,
                    SampleRecord.reason,
                    VerdictRecord.reason,
                    VerdictRecord.detail,
                )
                .outerjoin(
                    VerdictRecord,
                    and_(
                        VerdictRecord.sample_id == SampleRecord.id,
                        VerdictRecord.stage == SampleRecord.stage,
                        VerdictRecord.accepted.is_(False),
                    ),
                )
                .where(
                    SampleRecord.job_id == job_id,
                    SampleRecord.status == SampleStatus.rejected,
                    SampleRecord.position.in_(page),
                )
                .order_by(SampleRecord.position)
            ).all()
        for text, stage, reason, verdict_reason, detail in rows:
            verdict = Verdict(
                accepted=False,
                stage=stage or "unknown",
                reason=verdict_reason or reason,
                detail=detail,
            )
            found.append((Sample.model_validate_json(text), verdict))
    return found


def _job_seed_and_tools(sessions: sessionmaker[Session], job_id: str) -> tuple[int, list[Tool]]:
    with sessions() as session:
        job = session.get(JobRecord, job_id)
        if job is None:
            raise ActionForgeError(f"job {job_id}: no such job; list jobs with GET /v1/jobs")
        catalog = session.get(CatalogRecord, job.catalog_id)
        seed = int(job.spec.get("seed", 0))
        tools = [Tool.model_validate(tool) for tool in catalog.tools] if catalog else []
    return seed, tools


def dpo_bytes(
    sessions: sessionmaker[Session], job_id: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[bytes]:
    """DPO JSON Lines for job `job_id`, one piece per chunk of accepted samples.

    Each accepted sample that the format verifier accepts makes one row, its rejected side a
    rejected sample of the same query or else a perturbation the format verifier rejects (see
    the module's description); seeded by the job's seed.
    """
    seed, tools = _job_seed_and_tools(sessions, job_id)
    index = rejected_index(sessions, job_id)
    verifier = FormatVerifier()
    for chunk in accepted_chunks(sessions, job_id, chunk_size=chunk_size):
        wanted = {position for sample in chunk for position in index.candidates(sample.query)}
        rejected = rejected_samples(sessions, job_id, sorted(wanted))
        buffer = io.BytesIO()
        pairs = build_pairs(chunk, rejected, verifier, seed=seed, tools=tools)
        count_export_rows("dpo", write_pairs(pairs, buffer))
        if buffer.tell():
            yield buffer.getvalue()


EXPORTER = Exporter("dpo", JSON_LINES_MEDIA_TYPE, JSON_LINES_SUFFIX, dpo_bytes)

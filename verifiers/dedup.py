"""The dedup stage: reject exact and near duplicates, keeping the sample seen first.

Exact duplicates share a key: the blake2b hash of the normalised query (Unicode NFKC, casefold,
whitespace collapsed, punctuation stripped at both ends) and the calls (tool name and canonical
JSON arguments; calls of one step in any order, steps in order; call ids and answers ignored).
A conversation is compared as a whole: its user turns' messages, joined, are its query, and its
calls are kept turn by turn.

Near duplicates are found with MinHash LSH (datasketch) over the normalised query's words and
word pairs; a candidate counts when its estimated Jaccard similarity reaches the threshold and,
by default (`same_calls=True`), its calls are identical too. Like APIGen, which de-duplicates on
query and answer, this keeps two queries that differ only in a city or an airport code (their
calls differ), and catches rewordings of the same request with the same calls.

Which sample is kept is deterministic: only kept samples enter the index, a sample duplicates the
earliest kept one it matches (the most similar one for near duplicates, the earliest on a tie),
and MinHash seeds are fixed. Feed samples in job position order (batch by batch, in position
order within a batch) with the job's and catalog's earlier kept samples as `prior`; fed in
another order, another copy of a duplicate is kept.

Stored indexes. An index need not live in memory: `lookup_keys` gives a fingerprint's keys (its
exact key and one key per LSH band, as 64-bit integers). Store the keys of every kept sample
(with its `Fingerprint.to_bytes()`); to judge new samples, fetch the kept samples that share a
key with any of them, rebuild a small index from their fingerprints in their order
(`from_fingerprints`) and `offer` the new samples in theirs. Two samples the full index would
compare always share a key, so the small index judges exactly as the full one would. The job
engine works this way (`service.pipeline.dedup`, through `DedupStage`'s ordered-stage methods):
it de-duplicates the batches of a job in position order while holding the job's lock, against
the earlier jobs on the same catalog, whatever order workers verify the batches in.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import struct
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import orjson
from datasketch import LeanMinHash, MinHash, MinHashLSH

from unified.errors import ActionForgeError
from unified.model import Sample, Step
from verifiers.stages import StageBase, StageContext
from verifiers.verdict import Verdict

STAGE = "dedup"

DEFAULT_THRESHOLD = 0.85
DEFAULT_NUM_PERM = 128
MINHASH_SEED = 1
# datasketch 2's default scheme, named so stored signatures keep meaning the same thing.
MINHASH_SCHEME = "affine32"
SIGNATURE_BYTEORDER = "<"
KEY_BYTES = 16
# LeanMinHash.serialize's header: seed, minus the number of hash values, scheme code.
_SIGNATURE_HEADER = "<qiB"
_HEADER_BYTES = struct.calcsize(_SIGNATURE_HEADER)
_SCHEME_CODE = 1  # affine32

_WORD = re.compile(r"\w+")


class DedupReason(StrEnum):
    """Reason codes of the dedup stage. Users filter and count rejections by these."""

    duplicate = "duplicate"
    near_duplicate = "near_duplicate"


class DedupError(ActionForgeError):
    """A dedup index was configured wrongly or given a fingerprint it cannot use."""


def normalise_query(query: str) -> str:
    """The query as compared: NFKC, casefolded, whitespace collapsed, end punctuation stripped."""
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", query).casefold())
    text = " ".join(text.split())
    start, end = 0, len(text)
    while start < end and _is_end_noise(text[start]):
        start += 1
    while end > start and _is_end_noise(text[end - 1]):
        end -= 1
    return text[start:end]


def _is_end_noise(char: str) -> bool:
    return char.isspace() or unicodedata.category(char).startswith("P")


def canonical_calls(sample: Sample) -> bytes:
    """The sample's calls as canonical JSON: per step with calls, its calls sorted; for a
    conversation, a list of that per turn."""
    if sample.is_multi_turn():
        return orjson.dumps([_canonical_steps(turn.steps) for turn in sample.conversation()])
    return orjson.dumps(_canonical_steps(sample.steps))


def _canonical_steps(steps: Sequence[Step]) -> list[list[str]]:
    canonical = []
    for step in steps:
        if step.tool_calls:
            calls = [
                orjson.dumps([call.name, call.arguments], option=orjson.OPT_SORT_KEYS).decode()
                for call in step.tool_calls
            ]
            canonical.append(sorted(calls))
    return canonical


def conversation_text(sample: Sample) -> str:
    """What the user said: the query, and in a conversation every turn's message after it."""
    if not sample.is_multi_turn():
        return sample.query
    return "\n".join(turn.query for turn in sample.conversation())


def query_shingles(normalised: str) -> list[bytes]:
    """The words and adjacent word pairs of a normalised query, as bytes for hashing."""
    words = _WORD.findall(normalised)
    pairs = [f"{a} {b}" for a, b in itertools.pairwise(words)]
    return sorted({word.encode() for word in words} | {pair.encode() for pair in pairs})


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=KEY_BYTES).digest()


def _lookup_key(slot: bytes, data: bytes) -> int:
    digest = hashlib.blake2b(data, digest_size=8, person=slot.ljust(16, b"\0")[:16]).digest()
    return int.from_bytes(digest, "little", signed=True)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What the index keeps of a sample: exact key, calls key and MinHash signature bytes.

    `signature` is None for a query without words (it can only be an exact duplicate).
    `to_bytes()` packs all three for storage; `from_bytes` reads them back.
    """

    exact: bytes
    calls: bytes
    signature: bytes | None

    def to_bytes(self) -> bytes:
        """Exact key, calls key, then the signature (absent for a query without words)."""
        return self.exact + self.calls + (self.signature or b"")

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        """Read a fingerprint written by `to_bytes`."""
        if len(data) < 2 * KEY_BYTES:
            raise DedupError(
                f"dedup fingerprint: {len(data)} bytes is shorter than the {2 * KEY_BYTES} "
                "bytes of its two keys; store what Fingerprint.to_bytes() returns, or rebuild "
                "the index from the samples"
            )
        signature = bytes(data[2 * KEY_BYTES :]) or None
        return cls(bytes(data[:KEY_BYTES]), bytes(data[KEY_BYTES : 2 * KEY_BYTES]), signature)


@functools.cache
def _band_shape(threshold: float, num_perm: int) -> tuple[int, int]:
    # datasketch picks bands x rows by numeric integration, which is slow to repeat per index.
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


@dataclass(slots=True)
class _Banded:
    """A signature's hash values and its LSH band keys, computed once per sample."""

    hashvalues: np.ndarray
    keys: list[int]


@dataclass(slots=True)
class _Kept:
    sample_id: str
    calls: bytes
    hashvalues: np.ndarray | None


class DedupIndex:
    """The kept samples of a job or catalog, to judge new samples against.

    `threshold` is the estimated Jaccard similarity of query word sets (words and word pairs) from
    which a sample is a near duplicate; `num_perm` the MinHash size (more: finer estimates, more
    memory); `same_calls` requires identical calls for a near duplicate (exact duplicates always
    need them).
    """

    def __init__(
        self,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        num_perm: int = DEFAULT_NUM_PERM,
        same_calls: bool = True,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise DedupError(
                f"dedup: threshold {threshold} is outside (0, 1]; give the Jaccard similarity "
                f"from which queries count as near duplicates, e.g. {DEFAULT_THRESHOLD}"
            )
        if not 16 <= num_perm <= 1024:
            raise DedupError(
                f"dedup: num_perm {num_perm} is outside 16..1024; give the number of MinHash "
                f"permutations, e.g. {DEFAULT_NUM_PERM}"
            )
        self.threshold = threshold
        self.num_perm = num_perm
        self.same_calls = same_calls
        self._hasher = MinHash(num_perm=num_perm, seed=MINHASH_SEED, scheme=MINHASH_SCHEME)
        # LSH band tables of our own, with datasketch's bands x rows: its in-memory MinHashLSH
        # keeps a set per bucket, keyed by the band's bytes, and each key's list of bands (2.5 of
        # the 3.5 KB a kept sample cost); a position (or a list of them) under the band's 64-bit
        # `lookup_keys` key costs a quarter of that, and is faster.
        self._bands = _band_shape(threshold, num_perm)
        self._buckets: list[dict[int, int | list[int]]] = [{} for _ in range(self._bands[0])]
        self._kept: list[_Kept] = []
        self._ids: set[str] = set()
        self._exact: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self._ids

    def fingerprint(self, sample: Sample) -> Fingerprint:
        """The sample's exact key, calls key and MinHash signature."""
        query = normalise_query(conversation_text(sample))
        calls = canonical_calls(sample)
        exact = _digest(orjson.dumps(query) + b"\n" + calls)
        shingles = query_shingles(query)
        if not shingles:
            return Fingerprint(exact, _digest(calls), None)
        # One MinHash reused per index: building one per sample copies its permutations.
        self._hasher.clear()
        self._hasher.update_batch(shingles)
        header = struct.pack(_SIGNATURE_HEADER, MINHASH_SEED, -self.num_perm, _SCHEME_CODE)
        signature = header + self._hasher.hashvalues.astype("<u4").tobytes()
        return Fingerprint(exact, _digest(calls), signature)

    def from_signature(self, signature: bytes) -> LeanMinHash:
        """The MinHash stored as `signature` (datasketch's LeanMinHash layout, little-endian),
        checked to fit this index."""
        try:
            seed, count, scheme = struct.unpack_from(_SIGNATURE_HEADER, signature)
        except struct.error:
            raise DedupError(
                f"dedup signature: {len(signature)} bytes is too short for a MinHash; store what "
                "Fingerprint.to_bytes() returns, or rebuild the index from the samples"
            ) from None
        made = (seed, -count, scheme)
        if made != (MINHASH_SEED, self.num_perm, _SCHEME_CODE):
            raise DedupError(
                f"dedup signature: made with seed {made[0]}, num_perm {made[1]}, scheme code "
                f"{made[2]}, but this index uses seed {MINHASH_SEED}, num_perm {self.num_perm}, "
                f"scheme code {_SCHEME_CODE} ('{MINHASH_SCHEME}'); use num_perm={made[1]} or "
                "rebuild the index from the samples"
            )
        if len(signature) != _HEADER_BYTES + 4 * self.num_perm:
            raise DedupError(
                f"dedup signature: {len(signature)} bytes, expected "
                f"{_HEADER_BYTES + 4 * self.num_perm} for num_perm {self.num_perm}; store what "
                "Fingerprint.to_bytes() returns, or rebuild the index from the samples"
            )
        values = np.frombuffer(signature, dtype="<u4", offset=_HEADER_BYTES)
        return LeanMinHash(seed=MINHASH_SEED, hashvalues=values, scheme=MINHASH_SCHEME)

    def check(self, item: Sample | Fingerprint, sample_id: str | None = None) -> Verdict:
        """Accept, or reject as a duplicate naming the kept sample; does not add the sample.

        `sample_id` defaults to a sample's own id; a sample never duplicates itself, so judging
        an already kept sample again accepts it.
        """
        if isinstance(item, Sample):
            sample_id = item.id if sample_id is None else sample_id
            item = self.fingerprint(item)
        return self._judge(item, self._banded(item), sample_id)

    def _banded(self, fingerprint: Fingerprint) -> _Banded | None:
        if fingerprint.signature is None:
            return None
        hashvalues = self.from_signature(fingerprint.signature).hashvalues
        return _Banded(hashvalues, self._band_keys(hashvalues))

    def _judge(self, item: Fingerprint, banded: _Banded | None, sample_id: str | None) -> Verdict:
        first = self._exact.get(item.exact)
        if first is not None and self._kept[first].sample_id != sample_id:
            kept = self._kept[first].sample_id
            return Verdict.reject(
                STAGE,
                DedupReason.duplicate,
                f"duplicate of sample '{kept}': the same query (ignoring case, spacing and "
                "punctuation at the ends) and the same calls",
            )
        if banded is None:
            return Verdict.accept(STAGE)
        match = self._nearest(banded, item.calls, sample_id)
        if match is None:
            return Verdict.accept(STAGE)
        kept, similarity = match
        calls = "same calls" if self.same_calls else "calls not compared"
        return Verdict.reject(
            STAGE,
            DedupReason.near_duplicate,
            f"near duplicate of sample '{kept}': query similarity {similarity:.2f} (threshold "
            f"{self.threshold:.2f}), {calls}",
        )

    def _nearest(
        self, banded: _Banded, calls: bytes, sample_id: str | None
    ) -> tuple[str, float] | None:
        best: tuple[float, int] | None = None
        for order in self._candidates(banded.keys):
            kept = self._kept[order]
            if kept.sample_id == sample_id or kept.hashvalues is None:
                continue
            if self.same_calls and kept.calls != calls:
                continue
            similarity = float(np.count_nonzero(kept.hashvalues == banded.hashvalues))
            similarity /= self.num_perm
            if similarity < self.threshold:
                continue
            if best is None or (similarity, -order) > (best[0], -best[1]):
                best = (similarity, order)
        if best is None:
            return None
        return self._kept[best[1]].sample_id, best[0]

    def _band_keys(self, hashvalues: np.ndarray) -> list[int]:
        """The signature's LSH band keys: the same as slots 1.. of `lookup_keys`."""
        bands, rows = self._bands
        values = hashvalues.astype(SIGNATURE_BYTEORDER + "u4", copy=False).tobytes()
        step = rows * 4
        return [
            _lookup_key(band.to_bytes(2, "little"), values[band * step : (band + 1) * step])
            for band in range(bands)
        ]

    def _candidates(self, band_keys: list[int]) -> set[int]:
        """Positions of kept samples that share an LSH band with the signature."""
        found: set[int] = set()
        for bucket, key in zip(self._buckets, band_keys, strict=True):
            kept = bucket.get(key)
            if isinstance(kept, int):
                found.add(kept)
            elif kept is not None:
                found.update(kept)
        return found

    def lookup_keys(self, fingerprint: Fingerprint) -> list[tuple[int, int]]:
        """(slot, key) pairs under which to store a kept sample and look up candidates: slot 0
        holds the exact key, slots 1.. one key per LSH band of the signature; keys are signed
        64-bit integers (a collision only adds a candidate)."""
        keys = [(0, _lookup_key(b"exact", fingerprint.exact))]
        banded = self._banded(fingerprint)  # checks that the signature fits this index
        if banded is not None:
            keys += enumerate(banded.keys, start=1)
        return keys

    def add(self, sample_id: str, item: Sample | Fingerprint) -> None:
        """Keep a sample (or its stored fingerprint) as one later samples are judged against.

        Adding an id that is already kept does nothing.
        """
        if sample_id in self._ids:
            return
        fingerprint = self.fingerprint(item) if isinstance(item, Sample) else item
        self._keep(sample_id, fingerprint, self._banded(fingerprint))

    def _keep(self, sample_id: str, fingerprint: Fingerprint, banded: _Banded | None) -> None:
        order = len(self._kept)
        self._kept.append(
            _Kept(sample_id, fingerprint.calls, None if banded is None else banded.hashvalues)
        )
        self._ids.add(sample_id)
        self._exact.setdefault(fingerprint.exact, order)
        if banded is not None:
            for bucket, key in zip(self._buckets, banded.keys, strict=True):
                first = bucket.setdefault(key, order)
                if isinstance(first, list):
                    first.append(order)
                elif first != order:
                    bucket[key] = [first, order]

    def offer(self, item: Sample | Fingerprint, sample_id: str | None = None) -> Verdict:
        """Judge a sample (or its fingerprint, with `sample_id`) and keep it when accepted."""
        if isinstance(item, Sample):
            sample_id = item.id if sample_id is None else sample_id
            fingerprint = self.fingerprint(item)
        elif sample_id is None:
            raise DedupError("dedup: offering a fingerprint needs the id of its sample")
        else:
            fingerprint = item
        banded = self._banded(fingerprint)
        verdict = self._judge(fingerprint, banded, sample_id)
        if verdict.accepted and sample_id not in self._ids:
            self._keep(sample_id, fingerprint, banded)
        return verdict

    @classmethod
    def from_samples(
        cls,
        samples: Iterable[tuple[str, Sample]],
        *,
        threshold: float = DEFAULT_THRESHOLD,
        num_perm: int = DEFAULT_NUM_PERM,
        same_calls: bool = True,
    ) -> DedupIndex:
        """An index of already kept samples, given as (id, sample) in position order."""
        index = cls(threshold=threshold, num_perm=num_perm, same_calls=same_calls)
        for sample_id, sample in samples:
            index.add(sample_id, sample)
        return index

    @classmethod
    def from_fingerprints(
        cls,
        fingerprints: Iterable[tuple[str, Fingerprint | bytes]],
        *,
        threshold: float = DEFAULT_THRESHOLD,
        num_perm: int = DEFAULT_NUM_PERM,
        same_calls: bool = True,
    ) -> DedupIndex:
        """An index rebuilt from stored fingerprints (or their bytes), in position order."""
        index = cls(threshold=threshold, num_perm=num_perm, same_calls=same_calls)
        for sample_id, stored in fingerprints:
            fingerprint = (
                stored if isinstance(stored, Fingerprint) else Fingerprint.from_bytes(stored)
            )
            index.add(sample_id, fingerprint)
        return index


def dedup_in_order(
    samples: Sequence[Sample],
    prior: DedupIndex | Iterable[tuple[str, Sample]] | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    num_perm: int = DEFAULT_NUM_PERM,
    same_calls: bool = True,
) -> list[Verdict]:
    """One verdict per sample, judged in the given (position) order against `prior` and each
    other.

    `prior` is the earlier kept samples of the job and catalog: an index (which this call
    extends with the samples it accepts; its own settings apply) or (id, sample) pairs.
    """
    if isinstance(prior, DedupIndex):
        index = prior
    else:
        index = DedupIndex.from_samples(
            prior or (), threshold=threshold, num_perm=num_perm, same_calls=same_calls
        )
    return [index.offer(sample) for sample in samples]


class DedupStage(StageBase):
    """The dedup stage: rejects exact and near duplicates of the samples kept before, in the
    order samples come (batch after batch with one context, position order within a batch).

    An ordered stage (`verifiers.stages.OrderedStage`): the job engine keeps what it kept in the
    database (`service.pipeline.dedup`) and judges batches in position order with
    `judge_in_order`, so that the batches of a job verified by many workers in any order keep
    the same samples.
    """

    name = STAGE
    ordered = True
    judges_conversations = True

    def __init__(self) -> None:
        # An empty index with the default settings: fingerprints and keys need no kept samples.
        self._fingerprinter = DedupIndex()

    def verify_batch(self, samples: Sequence[Sample], context: StageContext) -> list[Verdict]:
        """One verdict per sample, in order; accepted samples join the context's index."""
        return dedup_in_order(samples, context.state(self.name, DedupIndex))

    def prepare(self, sample: Sample) -> bytes:
        """The sample's fingerprint, as stored until its turn comes."""
        return self._fingerprinter.fingerprint(sample).to_bytes()

    def lookup_keys(self, prepared: bytes) -> list[tuple[int, int]]:
        """The exact key and one key per LSH band of a stored fingerprint."""
        return self._fingerprinter.lookup_keys(Fingerprint.from_bytes(prepared))

    def judge_in_order(
        self,
        waiting: Sequence[tuple[str, bytes]],
        kept_before: Iterable[tuple[str, bytes]],
        options: object = None,
    ) -> list[Verdict]:
        """Verdicts for the `waiting` fingerprints (id, bytes), in order, against the kept ones
        that share a key with them, in their order."""
        index = DedupIndex.from_fingerprints(kept_before)
        return [index.offer(Fingerprint.from_bytes(raw), sample_id) for sample_id, raw in waiting]

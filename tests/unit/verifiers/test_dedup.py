"""The dedup stage on seeded near duplicates of template samples: what counts as a duplicate,
which copy is kept, indexes carried across batches and rebuilt from stored signatures."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from datasketch import LeanMinHash  # type: ignore[import-untyped]

from generators.base import GenerationRequest
from generators.template.generator import TemplateGenerator
from unified.catalogs import load_catalog
from unified.model import QueryStyle, Sample, Step, ToolCall
from verifiers.dedup import (
    STAGE,
    DedupError,
    DedupIndex,
    DedupReason,
    DedupStage,
    Fingerprint,
    dedup_in_order,
    normalise_query,
)
from verifiers.stages import FormatStage, StageContext, run_stages

ROOT = Path(__file__).resolve().parents[3]
TRAVEL = load_catalog(ROOT / "examples" / "travel_api.yaml").tools
PINNED = {"created": "2026-01-31T12:00:00+00:00"}


def template_samples(n: int, seed: int) -> list[Sample]:
    request = GenerationRequest(n=n, seed=seed, options=PINNED)
    return TemplateGenerator().generate(TRAVEL, request)


SAMPLES = template_samples(400, seed=2)
WITH_CALLS = [s for s in SAMPLES if s.tool_calls()]


def variant(sample: Sample, query: str, suffix: str = "v") -> Sample:
    return sample.model_copy(update={"id": f"{sample.id}-{suffix}", "query": query})


def single(sample: Sample) -> DedupIndex:
    index = DedupIndex()
    index.add(sample.id, sample)
    return index


def test_normalising_folds_case_width_spacing_and_end_punctuation() -> None:
    wide = "  \uff37\uff45ather in  PARIS,\tplease?! "
    assert normalise_query(wide) == "weather in paris, please"
    assert normalise_query("¿Qué tiempo hace en Straße?") == "qué tiempo hace en strasse"
    assert normalise_query("...") == ""


def test_the_same_query_in_other_case_spacing_and_punctuation_is_a_duplicate() -> None:
    for sample in WITH_CALLS[:50]:
        query = "  " + sample.query.upper().replace(" ", "   ").rstrip("?.") + "!!"
        verdict = single(sample).check(variant(sample, query))
        assert verdict.stage == STAGE
        assert verdict.reason == DedupReason.duplicate, sample.query
        assert verdict.detail is not None
        assert f"duplicate of sample '{sample.id}'" in verdict.detail


def test_parallel_calls_in_another_order_are_a_duplicate() -> None:
    parallel = [s for s in WITH_CALLS if s.meta.style is QueryStyle.parallel]
    assert len(parallel) >= 10
    for sample in parallel:
        reordered = [Step(tool_calls=list(reversed(step.tool_calls))) for step in sample.steps]
        copy = sample.model_copy(update={"id": "again", "steps": reordered})
        assert copy.tool_calls() != sample.tool_calls()
        assert single(sample).check(copy).reason == DedupReason.duplicate


def test_calls_in_another_step_order_are_not_a_duplicate() -> None:
    first = ToolCall(name="get_weather", arguments={"city": "Oslo"})
    second = ToolCall(name="get_weather", arguments={"city": "Bergen"})
    one = Sample(id="a", query="Weather in Oslo, then Bergen", steps=[Step(tool_calls=[first])])
    one.steps.append(Step(tool_calls=[second]))
    other = Sample(id="b", query=one.query, steps=[Step(tool_calls=[second])])
    other.steps.append(Step(tool_calls=[first]))
    verdict = single(one).check(other)
    # Same words, other calls: neither exact nor (with same_calls) near.
    assert verdict.accepted


def test_a_word_added_to_a_query_with_the_same_calls_is_a_near_duplicate() -> None:
    long_queries = [s for s in WITH_CALLS if len(s.query.split()) >= 12]
    assert len(long_queries) >= 100
    for sample in long_queries:
        query = sample.query.rstrip("?.") + " please" + sample.query[-1]
        verdict = single(sample).check(variant(sample, query))
        assert verdict.reason == DedupReason.near_duplicate, sample.query
        assert verdict.detail is not None
        assert verdict.detail.startswith(
            f"near duplicate of sample '{sample.id}': query similarity"
        )
        assert "same calls" in verdict.detail


def test_two_words_swapped_in_a_long_query_is_a_near_duplicate() -> None:
    sample = Sample(
        id="kept",
        query="Could you please look up the current weather and the forecast for the next five "
        "days in Lisbon for me using metric units?",
        steps=[Step(tool_calls=[ToolCall(name="get_weather", arguments={"city": "Lisbon"})])],
    )
    words = sample.query.split()
    words[3], words[4] = words[4], words[3]
    verdict = single(sample).check(variant(sample, " ".join(words)))
    assert verdict.reason == DedupReason.near_duplicate


def test_another_city_with_other_calls_is_kept() -> None:
    weather = [
        s
        for s in WITH_CALLS
        if s.meta.style is QueryStyle.simple and s.steps[0].tool_calls[0].name == "get_weather"
    ]
    assert len(weather) >= 10
    for sample in weather:
        call = sample.steps[0].tool_calls[0]
        assert isinstance(call.arguments, dict)
        city = call.arguments["city"]
        moved = call.model_copy(update={"arguments": {**call.arguments, "city": "Reykjavik"}})
        other = sample.model_copy(
            update={
                "id": "elsewhere",
                "query": sample.query.replace(city, "Reykjavik"),
                "steps": [Step(tool_calls=[moved])],
            }
        )
        assert other.query != sample.query
        assert single(sample).check(other).accepted


def test_without_same_calls_a_reworded_query_with_other_calls_is_a_near_duplicate() -> None:
    sample = next(s for s in WITH_CALLS if len(s.query.split()) >= 12)
    query = sample.query.rstrip("?.") + " please" + sample.query[-1]
    copy = variant(sample, query).model_copy(update={"steps": []})
    assert single(sample).check(copy).accepted
    loose = DedupIndex(same_calls=False)
    loose.add(sample.id, sample)
    verdict = loose.check(copy)
    assert verdict.reason == DedupReason.near_duplicate
    assert verdict.detail is not None and "calls not compared" in verdict.detail


def test_the_first_copy_is_kept_and_the_same_input_gives_the_same_verdicts() -> None:
    original = WITH_CALLS[0]
    copy = variant(original, original.query.lower(), "copy")
    batch = [original, *SAMPLES[1:30], copy]
    first = dedup_in_order(batch)
    assert first == dedup_in_order(batch)
    assert first[0].accepted
    assert first[-1].reason == DedupReason.duplicate
    assert first[-1].detail is not None and f"'{original.id}'" in first[-1].detail
    reversed_verdicts = dedup_in_order(list(reversed(batch)))
    assert reversed_verdicts[0].accepted
    assert reversed_verdicts[-1].detail is not None
    assert f"'{copy.id}'" in reversed_verdicts[-1].detail


def test_a_near_duplicate_names_the_most_similar_kept_sample() -> None:
    base = (
        "Could you please look up the current weather and the forecast for the next five days "
        "in Lisbon for me"
    )
    calls = [Step(tool_calls=[ToolCall(name="get_weather", arguments={"city": "Lisbon"})])]
    far = Sample(id="far", query=base + " using metric units today", steps=calls)
    near = Sample(id="near", query=base + " today", steps=calls)
    probe = Sample(id="probe", query=base + " right now", steps=calls)
    index = DedupIndex.from_samples([("far", far), ("near", near)], threshold=0.7)
    verdict = index.check(probe)
    assert verdict.reason == DedupReason.near_duplicate
    assert verdict.detail is not None and "'near'" in verdict.detail


def test_a_prior_index_carries_over_batches_like_one_long_batch() -> None:
    samples = template_samples(600, seed=7)
    whole = dedup_in_order(samples)
    assert Counter(v.reason for v in whole)[DedupReason.duplicate] > 0
    index = DedupIndex()
    by_batches = [
        v
        for start in range(0, 600, 100)
        for v in dedup_in_order(samples[start : start + 100], prior=index)
    ]
    assert by_batches == whole
    assert len(index) == sum(v.accepted for v in whole)


def test_prior_given_as_kept_samples_judges_the_new_batch() -> None:
    samples = template_samples(300, seed=7)
    verdicts = dedup_in_order(samples)
    kept = [(s.id, s) for s, v in zip(samples[:200], verdicts[:200], strict=True) if v.accepted]
    assert dedup_in_order(samples[200:], prior=kept) == verdicts[200:]


def test_judging_a_batch_again_against_its_own_kept_samples_gives_the_same_verdicts() -> None:
    first = dedup_in_order(SAMPLES)
    assert not all(v.accepted for v in first)
    kept = [(s.id, s) for s, v in zip(SAMPLES, first, strict=True) if v.accepted]
    index = DedupIndex.from_samples(kept)
    assert all(sample_id in index for sample_id, _ in kept)
    assert dedup_in_order(SAMPLES, prior=index) == first
    assert len(index) == len(kept)


def test_few_distinct_template_samples_are_taken_for_near_duplicates() -> None:
    # Measured: 3 of 1,951 exact-distinct samples, all irrelevance queries (no calls, so
    # `same_calls` cannot tell them apart) that differ only in a short city name.
    samples = template_samples(2000, seed=1)
    verdicts = dedup_in_order(samples)
    counts = Counter(v.reason for v in verdicts)
    distinct = len(samples) - counts[DedupReason.duplicate]
    assert distinct > 1900
    assert counts[DedupReason.near_duplicate] <= 0.005 * distinct
    flagged = [s for s, v in zip(samples, verdicts, strict=True) if v.reason == "near_duplicate"]
    assert all(not s.tool_calls() for s in flagged)


def test_a_query_without_words_can_only_be_an_exact_duplicate() -> None:
    empty = Sample(id="a", query="?!", steps=[])
    fingerprint = DedupIndex().fingerprint(empty)
    assert fingerprint.signature is None
    verdicts = dedup_in_order([empty, empty.model_copy(update={"id": "b", "query": "..."})])
    assert verdicts[0].accepted and verdicts[1].reason == DedupReason.duplicate


def test_fingerprints_round_trip_through_bytes_and_rebuild_the_same_index() -> None:
    index = DedupIndex()
    fingerprints = [(s.id, index.fingerprint(s)) for s in SAMPLES[:100]]
    for _, fingerprint in fingerprints:
        assert Fingerprint.from_bytes(fingerprint.to_bytes()) == fingerprint
        assert fingerprint.signature is not None
        stored = LeanMinHash.deserialize(fingerprint.signature, "<")
        restored = index.from_signature(fingerprint.signature)
        assert (stored.hashvalues == restored.hashvalues).all()
    stored_rows = [(sample_id, f.to_bytes()) for sample_id, f in fingerprints]
    rebuilt = DedupIndex.from_fingerprints(stored_rows)
    fresh = DedupIndex.from_samples((s.id, s) for s in SAMPLES[:100])
    probes = [variant(s, s.query.upper(), "probe") for s in SAMPLES[:100]] + SAMPLES[100:200]
    assert [rebuilt.check(p) for p in probes] == [fresh.check(p) for p in probes]
    assert [rebuilt.check(p).accepted for p in probes[:100]] == [False] * 100


def test_signatures_do_not_depend_on_the_index_instance() -> None:
    sample = SAMPLES[0]
    assert DedupIndex().fingerprint(sample) == DedupIndex(threshold=0.5).fingerprint(sample)


def test_the_dedup_stage_runs_after_the_format_stage() -> None:
    copy = variant(WITH_CALLS[0], WITH_CALLS[0].query + "  ", "copy")
    batch = [WITH_CALLS[0], WITH_CALLS[1], copy]
    verdicts = run_stages([FormatStage(), DedupStage()], batch, StageContext(TRAVEL)).verdicts
    assert [[v.stage for v in vs] for vs in verdicts] == [["format", "dedup"]] * 3
    assert [vs[-1].reason for vs in verdicts] == [None, None, "duplicate"]


def test_the_dedup_stage_remembers_earlier_batches_of_its_context() -> None:
    context = StageContext(TRAVEL)
    stage = DedupStage()
    first = stage.verify_batch(WITH_CALLS[:3], context)
    copies = [variant(s, s.query.upper(), "copy") for s in WITH_CALLS[:2]]
    later = stage.verify_batch([*copies, WITH_CALLS[3]], context)
    assert [v.accepted for v in first] == [True] * 3
    assert [v.reason for v in later] == ["duplicate", "duplicate", None]
    assert later[0].detail is not None and f"'{WITH_CALLS[0].id}'" in later[0].detail
    fresh = stage.verify_batch(copies, StageContext(TRAVEL))
    assert [v.accepted for v in fresh] == [True, True]


def test_lookup_keys_are_shared_by_every_pair_the_index_would_compare() -> None:
    index = DedupIndex()
    kept = WITH_CALLS[:150]
    keys: dict[int, set[str]] = {}
    for sample in kept:
        for _, key in index.lookup_keys(index.fingerprint(sample)):
            keys.setdefault(key, set()).add(sample.id)
    full = DedupIndex.from_samples((s.id, s) for s in kept)
    probes = [variant(s, s.query.replace(" ", "  ").upper(), "p") for s in kept[:75]]
    probes += [variant(s, s.query + " please", "q") for s in kept[75:]] + SAMPLES[200:260]
    for probe in probes:
        fingerprint = index.fingerprint(probe)
        lookup = index.lookup_keys(fingerprint)
        assert [slot for slot, _ in lookup] == list(range(len(lookup)))
        candidates = set().union(*(keys.get(key, set()) for _, key in lookup))
        small = DedupIndex.from_samples((s.id, s) for s in kept if s.id in candidates)
        assert small.check(fingerprint, probe.id) == full.check(fingerprint, probe.id)
    assert sum(not full.check(p).accepted for p in probes) >= 100


def test_offering_a_fingerprint_needs_its_sample_id() -> None:
    index = DedupIndex()
    fingerprint = index.fingerprint(SAMPLES[0])
    with pytest.raises(DedupError, match="offering a fingerprint needs the id of its sample"):
        index.offer(fingerprint)
    assert index.offer(fingerprint, "kept").accepted
    assert "kept" in index


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"threshold": 0.0}, "dedup: threshold 0.0 is outside (0, 1]; give the Jaccard"),
        ({"threshold": 1.5}, "dedup: threshold 1.5 is outside (0, 1]"),
        ({"num_perm": 8}, "dedup: num_perm 8 is outside 16..1024; give the number of MinHash"),
    ],
)
def test_bad_settings_say_what_to_give(settings: dict[str, float], message: str) -> None:
    with pytest.raises(DedupError) as caught:
        DedupIndex(**settings)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message)


def test_a_truncated_fingerprint_says_what_to_store() -> None:
    with pytest.raises(DedupError, match=r"^dedup fingerprint: 20 bytes is shorter than the 32"):
        Fingerprint.from_bytes(b"x" * 20)


def test_a_signature_from_another_num_perm_says_how_to_fix_it() -> None:
    signature = DedupIndex(num_perm=64).fingerprint(SAMPLES[0]).signature
    assert signature is not None
    with pytest.raises(DedupError) as caught:
        DedupIndex().from_signature(signature)
    assert str(caught.value) == (
        "dedup signature: made with seed 1, num_perm 64, scheme code 1, but this index uses "
        "seed 1, num_perm 128, scheme code 1 ('affine32'); use num_perm=64 or rebuild the index "
        "from the samples"
    )


def test_a_short_or_cut_signature_says_what_to_store() -> None:
    signature = DedupIndex().fingerprint(SAMPLES[0]).signature
    assert signature is not None
    with pytest.raises(DedupError, match=r"^dedup signature: 5 bytes is too short for a MinHash"):
        DedupIndex().from_signature(signature[:5])
    with pytest.raises(DedupError, match=r"^dedup signature: 100 bytes, expected 525 for"):
        DedupIndex().from_signature(signature[:100])
    fingerprint = Fingerprint(b"e" * 16, b"c" * 16, signature[:100])
    with pytest.raises(DedupError, match="rebuild the index from the samples"):
        DedupIndex().add("cut", fingerprint)

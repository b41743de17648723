"""Verifiable constraints of instruction-following samples (IFEval-style): each kind has a
sampler (its parameters drawn with the sample's random generator), the sentence that states it
in the instruction, and a check of a response, so a verifier can tell whether a response obeys.

A sample records its constraints in `meta.extra["constraints"]` as dicts
`{"kind": ..., <parameters>, "text": ...}`; `check_constraint` takes such a dict.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

KINDS = (
    "length",
    "keywords",
    "forbidden_words",
    "bullets",
    "paragraphs",
    "json",
    "lowercase",
    "title",
    "end_phrase",
    "language",
)
"""Every constraint kind, in the order a sample's random generator draws from."""

_CONFLICTS = {
    frozenset({"json", "bullets"}),
    frozenset({"json", "paragraphs"}),
    frozenset({"json", "title"}),
    frozenset({"json", "end_phrase"}),
    frozenset({"bullets", "paragraphs"}),
    frozenset({"language", "keywords"}),
    frozenset({"language", "forbidden_words"}),
    frozenset({"language", "end_phrase"}),
    frozenset({"keywords", "forbidden_words"}),
}
"""Pairs of kinds that cannot hold together (or would make an odd instruction)."""

END_PHRASES = (
    "Is there anything else I can help with?",
    "Let me know if you have further questions.",
    "Hope this helps!",
)
LANGUAGES = ("French", "German", "Spanish", "Italian", "Portuguese")
FALLBACK_WORDS = ("plan", "budget", "summary", "example", "schedule", "reason", "option")

_STOP_WORDS = {
    "English": "the and is are of to in that it for with you this not be on have",
    "French": "le la les et est des une un que pour dans pas vous sur avec ce qui",
    "German": "der die das und ist nicht ein eine zu mit sie ich den sich auf für",
    "Spanish": "el la los las y es que de en un una por para con no se su",
    "Italian": "il lo la gli le e è che di un una per con non si sono del",
    "Portuguese": "o a os as e é que de em um uma para com não se do da",
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


@dataclass(frozen=True)
class Constraint:
    """One constraint: its kind, its parameters and the sentence that states it."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The form samples record in `meta.extra["constraints"]`."""
        return {"kind": self.kind, **self.params, "text": self.text}


def _length(rng: random.Random, words: Sequence[str]) -> Constraint:
    if rng.random() < 0.6:
        limit = rng.choice((40, 60, 80, 120, 150))
        return Constraint("length", {"max_words": limit}, f"Answer in at most {limit} words.")
    least = rng.choice((50, 100, 150))
    return Constraint("length", {"min_words": least}, f"Answer in at least {least} words.")


def _keywords(rng: random.Random, words: Sequence[str]) -> Constraint:
    chosen = rng.sample(list(words), min(2, len(words)))
    quoted = " and ".join(f'"{word}"' for word in chosen)
    noun = "word" if len(chosen) == 1 else "words"
    return Constraint("keywords", {"include": chosen}, f"Include the {noun} {quoted}.")


def _forbidden(rng: random.Random, words: Sequence[str]) -> Constraint:
    word = rng.choice(list(words))
    return Constraint("forbidden_words", {"exclude": [word]}, f'Do not use the word "{word}".')


def _bullets(rng: random.Random, words: Sequence[str]) -> Constraint:
    count = rng.randint(3, 5)
    return Constraint(
        "bullets",
        {"count": count},
        f'Answer with exactly {count} bullet points, each on its own line starting with "- ".',
    )


def _paragraphs(rng: random.Random, words: Sequence[str]) -> Constraint:
    count = rng.randint(2, 3)
    return Constraint(
        "paragraphs",
        {"count": count},
        f"Write exactly {count} paragraphs, separated by a blank line.",
    )


def _json(rng: random.Random, words: Sequence[str]) -> Constraint:
    return Constraint("json", {}, "Give the whole answer as valid JSON, with no other text.")


def _lowercase(rng: random.Random, words: Sequence[str]) -> Constraint:
    return Constraint("lowercase", {}, "Write the whole answer in lowercase letters only.")


def _title(rng: random.Random, words: Sequence[str]) -> Constraint:
    return Constraint(
        "title", {}, "Give the answer a title wrapped in double angular brackets, like <<title>>."
    )


def _end_phrase(rng: random.Random, words: Sequence[str]) -> Constraint:
    phrase = rng.choice(END_PHRASES)
    return Constraint(
        "end_phrase", {"phrase": phrase}, f'End the answer with the exact phrase "{phrase}".'
    )


def _language(rng: random.Random, words: Sequence[str]) -> Constraint:
    language = rng.choice(LANGUAGES)
    return Constraint(
        "language", {"language": language}, f"Answer in {language}, and in no other language."
    )


_SAMPLERS: dict[str, Callable[[random.Random, Sequence[str]], Constraint]] = {
    "length": _length,
    "keywords": _keywords,
    "forbidden_words": _forbidden,
    "bullets": _bullets,
    "paragraphs": _paragraphs,
    "json": _json,
    "lowercase": _lowercase,
    "title": _title,
    "end_phrase": _end_phrase,
    "language": _language,
}


def compatible_kinds(present: Sequence[str]) -> list[str]:
    """The kinds that can join constraints of kinds `present` (in `KINDS` order)."""
    return [
        kind
        for kind in KINDS
        if kind not in present and all(frozenset({kind, p}) not in _CONFLICTS for p in present)
    ]


def sample_constraint(kind: str, rng: random.Random, words: Sequence[str]) -> Constraint:
    """A constraint of `kind`; `words` are the topic words keyword constraints draw from."""
    return _SAMPLERS[kind](rng, list(words) or list(FALLBACK_WORDS))


def sample_constraints(count: int, rng: random.Random, words: Sequence[str]) -> list[Constraint]:
    """`count` constraints of different, compatible kinds (fewer if none is left)."""
    chosen: list[Constraint] = []
    for _ in range(count):
        kinds = compatible_kinds([c.kind for c in chosen])
        if not kinds:
            break
        chosen.append(sample_constraint(rng.choice(kinds), rng, words))
    return chosen


def check_constraint(constraint: dict[str, Any], response: str) -> str | None:
    """Why `response` breaks the recorded constraint, or None when it obeys it."""
    kind = constraint.get("kind")
    check = _CHECKS.get(str(kind))
    if check is None:
        return f"unknown constraint kind {kind!r}; known: {', '.join(KINDS)}"
    return check(constraint, response)


def _check_length(constraint: dict[str, Any], response: str) -> str | None:
    count = len(response.split())
    if "max_words" in constraint and count > constraint["max_words"]:
        return f"{count} words, at most {constraint['max_words']} asked"
    if "min_words" in constraint and count < constraint["min_words"]:
        return f"{count} words, at least {constraint['min_words']} asked"
    return None


def _has_word(word: str, response: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", response, re.IGNORECASE) is not None


def _check_keywords(constraint: dict[str, Any], response: str) -> str | None:
    missing = [w for w in constraint.get("include", []) if not _has_word(w, response)]
    return f"missing {', '.join(repr(w) for w in missing)}" if missing else None


def _check_forbidden(constraint: dict[str, Any], response: str) -> str | None:
    used = [w for w in constraint.get("exclude", []) if _has_word(w, response)]
    return f"uses {', '.join(repr(w) for w in used)}" if used else None


def _check_bullets(constraint: dict[str, Any], response: str) -> str | None:
    count = sum(1 for line in response.splitlines() if re.match(r"\s*[-*] ", line))
    return None if count == constraint["count"] else f"{count} bullets, {constraint['count']} asked"


def _check_paragraphs(constraint: dict[str, Any], response: str) -> str | None:
    parts = [part for part in re.split(r"\n\s*\n", response.strip()) if part.strip()]
    if len(parts) == constraint["count"]:
        return None
    return f"{len(parts)} paragraphs, {constraint['count']} asked"


def _check_json(constraint: dict[str, Any], response: str) -> str | None:
    text = re.sub(r"^```(?:json)?\s*|\s*```$", "", response.strip())
    try:
        json.loads(text)
    except ValueError:
        return "not valid JSON"
    return None


def _check_lowercase(constraint: dict[str, Any], response: str) -> str | None:
    return None if response == response.lower() else "has capital letters"


def _check_title(constraint: dict[str, Any], response: str) -> str | None:
    return None if re.search(r"<<[^<>\n]+>>", response) else "no <<title>>"


def _check_end_phrase(constraint: dict[str, Any], response: str) -> str | None:
    phrase = str(constraint.get("phrase", ""))
    return None if response.rstrip().endswith(phrase) else f"does not end with {phrase!r}"


def language_scores(text: str) -> dict[str, int]:
    """How many of each known language's common words `text` uses."""
    words = [word.lower() for word in _WORD.findall(text)]
    return {
        language: sum(1 for word in words if word in set(stop.split()))
        for language, stop in _STOP_WORDS.items()
    }


def language_of(text: str) -> str | None:
    """The known language whose common words `text` uses most; None when it uses none."""
    scores = language_scores(text)
    best = max(scores, key=lambda language: scores[language])
    return best if scores[best] else None


def _check_language(constraint: dict[str, Any], response: str) -> str | None:
    """The language whose common words the response uses most must be the one asked."""
    scores = language_scores(response)
    best = max(scores, key=lambda language: scores[language])
    wanted = constraint.get("language")
    if scores[best] == 0 or scores.get(str(wanted), 0) < scores[best]:
        return f"reads as {best if scores[best] else 'no known language'}, not {wanted}"
    return None


_CHECKS: dict[str, Callable[[dict[str, Any], str], str | None]] = {
    "length": _check_length,
    "keywords": _check_keywords,
    "forbidden_words": _check_forbidden,
    "bullets": _check_bullets,
    "paragraphs": _check_paragraphs,
    "json": _check_json,
    "lowercase": _check_lowercase,
    "title": _check_title,
    "end_phrase": _check_end_phrase,
    "language": _check_language,
}

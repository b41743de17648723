"""Faker-made values of each kind a parameter may want (a city, an email, a date...; see
`unified.values.value_kinds`), and strings that match a regular expression.

Faker's richer providers take 50-100 µs a call, too slow for thousands of samples a second, so
each kind's values come from a pool that Faker fills once per process from a fixed seed; every
sample then draws from the pools with its own `random.Random`. The values are deterministic for
a sample's RNG (given the installed Faker version).
"""

from __future__ import annotations

import ipaddress
import random
import uuid
import zlib
from collections.abc import Callable
from datetime import date, timedelta
from functools import cache

from faker import Faker
from rstr.xeger import Xeger

from unified.values.value_kinds import word_set

POOL_SIZE = 512
FIRST_DATE = date(2024, 1, 1)
DATE_SPAN_DAYS = 4 * 365
FIRST_BIRTH_DATE = date(1950, 1, 1)
BIRTH_SPAN_DAYS = 55 * 365

_UNITS = ("meters", "kilometers", "miles", "feet", "kilograms", "pounds", "seconds", "celsius")
_STATUSES = ("active", "pending", "completed", "cancelled", "available", "archived")


def _line(text: str) -> str:
    return ", ".join(part.strip() for part in text.splitlines() if part.strip())


_FUNCTION_WORDS = word_set(
    """about above after again against all almost along already also although always among
    another any anyone anything around because before behind below beside between both but
    during each either enough even ever every everybody everyone everything few for from he her
    here hers herself him himself his however i if into it its itself me might mine more most
    much must my myself neither never no nobody none nor not nothing now of off often on once
    only onto or other others our ours ourselves out over perhaps rather same several she should
    since so some somebody someone something sometimes than that the their theirs them
    themselves then there these they this those though through thus to too toward under unless
    until up upon us very via we what whatever when whenever where whether which while who
    whole whom whose why will with within without would yes yet you your yours yourself
    necessary"""
)


def _content_word(faker: Faker) -> str:
    """A common English word that is not a pronoun, preposition or the like."""
    while True:
        word = str(faker.word())
        if word not in _FUNCTION_WORDS and not word.endswith("ly"):
            return word


def _title(faker: Faker) -> str:
    return str(faker.catch_phrase()).title()


def _query(faker: Faker) -> str:
    return " ".join(faker.words(faker.random.randint(1, 3)))


def _country(faker: Faker) -> str:
    # Faker's list has a few long official names with parentheses; keep the plain ones.
    while True:
        name = str(faker.country())
        if "(" not in name and "," not in name:
            return name


def _math_function(faker: Faker) -> str:
    rnd = faker.random
    a, b, c = rnd.randint(1, 9), rnd.randint(1, 9), rnd.randint(1, 20)
    return rnd.choice(
        (f"{a}*x**2 + {b}*x - {c}", f"x**3 - {a}*x + {b}", f"{a}*x + {b}", f"sin(x) + {a}*x")
    )


PROVIDERS: dict[str, Callable[[Faker], str]] = {
    "city": lambda f: str(f.location_on_land()[2]),
    "country": _country,
    "country_code": lambda f: str(f.country_code()),
    "state": lambda f: str(f.state()),
    "street_address": lambda f: str(f.street_address()),
    "address": lambda f: _line(str(f.address())),
    "postcode": lambda f: str(f.postcode()),
    "email": lambda f: str(f.email()),
    "full_name": lambda f: str(f.name()),
    "first_name": lambda f: str(f.first_name()),
    "last_name": lambda f: str(f.last_name()),
    "user_name": lambda f: str(f.user_name()),
    "phone": lambda f: str(f.phone_number()),
    "url": lambda f: str(f.url()).rstrip("/") + "/" + str(f.uri_path()),
    "hostname": lambda f: str(f.hostname()),
    "company": lambda f: str(f.company()),
    "job": lambda f: str(f.job()),
    "currency_code": lambda f: str(f.currency_code()),
    "language": lambda f: str(f.language_name()),
    "language_code": lambda f: str(f.random.choice(("en", "fr", "de", "es", "pt", "it", "ja"))),
    "timezone": lambda f: str(f.timezone()),
    "file_name": lambda f: str(f.file_name()),
    "file_path": lambda f: str(f.file_path()),
    "mime_type": lambda f: str(f.mime_type()),
    "color": lambda f: str(f.safe_color_name()),
    "password": lambda f: str(f.password(length=12)),
    "title": _title,
    "text": lambda f: str(f.sentence()),
    "query": _query,
    "word": lambda f: _content_word(f),
    "proper_name": lambda f: _content_word(f).title(),
    "isbn": lambda f: str(f.isbn13()),
    "ticker": lambda f: str(f.lexify("????")).upper(),
    "airport": lambda f: str(f.lexify("???")).upper(),
    "code": lambda f: str(f.bothify("??-####")).upper(),
    "id": lambda f: str(f.bothify(f.random.choice(("########", "??######", "usr_#####")))),
    "token": lambda f: str(f.sha1())[:32],
    "version": lambda f: f.random.choice(("v1", "v2", f"{f.random_digit()}.{f.random_digit()}.0")),
    "math_function": _math_function,
    "variable": lambda f: str(f.random.choice(("x", "y", "t"))),
    "unit": lambda f: str(f.random.choice(_UNITS)),
    "status": lambda f: str(f.random.choice(_STATUSES)),
    "sort": lambda f: str(f.random.choice(("asc", "desc"))),
    "gender": lambda f: str(f.random.choice(("female", "male", "non-binary"))),
}
"""Faker-backed makers of each string kind."""


@cache
def _pool(kind: str) -> tuple[str, ...]:
    faker = Faker("en_US")
    faker.seed_instance(zlib.crc32(kind.encode()))
    make = PROVIDERS[kind]
    values = {make(faker) for _ in range(POOL_SIZE)}
    return tuple(sorted(values))


class PatternStrings(Xeger):
    """rstr's regex-to-string generator with short repeats: `+`, `*` and `{n,}` repeat at most
    REPEAT_SPAN more times than their minimum (rstr allows 100), or exactly `pinned` times
    (within the quantifier's bounds) to steer the length."""

    REPEAT_SPAN = 8

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self._pinned: int | None = None

    def make(self, pattern: str, pinned: int | None) -> str:
        """A string matching `pattern`; `pinned` fixes how often each repeat repeats."""
        self._pinned = pinned
        return str(self.xeger(pattern))

    def _handle_repeat(self, start_range: int, end_range: int, value: str) -> str:
        if self._pinned is None:
            times = self._random.randint(
                start_range, min(end_range, start_range + self.REPEAT_SPAN)
            )
        else:
            times = min(max(self._pinned, start_range), end_range)
        return "".join("".join(self._handle_state(state) for state in value) for _ in range(times))


class Fakes:
    """Values of each kind for one sample, drawn with the sample's RNG."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._patterns: PatternStrings | None = None

    def matching(self, pattern: str, min_length: int, max_length: int | None) -> str | None:
        """A string that matches the regular expression and the length bounds, or None when
        rstr cannot build the regex (lookarounds, back references...) or reach the length."""
        if self._patterns is None:
            self._patterns = PatternStrings(self.rng)
        strings = self._patterns

        def fits(text: str) -> bool:
            return len(text) >= min_length and (max_length is None or len(text) <= max_length)

        try:
            for _ in range(3):
                text = strings.make(pattern, None)
                if fits(text):
                    return text
            # Length grows with the repeat count: search the count that reaches the bounds.
            low, high = 0, max_length if max_length is not None else max(min_length, 1)
            while low <= high:
                middle = (low + high) // 2
                text = strings.make(pattern, middle)
                if fits(text):
                    return text
                if len(text) < min_length:
                    low = middle + 1
                else:
                    high = middle - 1
        except Exception:  # rstr raises assorted errors on regexes it cannot build
            return None
        return None

    def text(self, kind: str) -> str:
        """A value of a string kind (a key of PROVIDERS, or a date/time kind)."""
        if kind == "date":
            return self.date()
        if kind == "datetime":
            return self.datetime()
        if kind == "time":
            return self.time()
        if kind == "clock":
            return f"{self.rng.randrange(7, 23):02d}:{self.rng.choice((0, 15, 30, 45)):02d}"
        if kind == "birth_date":
            return self.date(birth=True)
        return self.rng.choice(_pool(kind))

    def date(self, birth: bool = False) -> str:
        """An ISO date within a fixed span (never relative to today, so samples stay the same)."""
        first, span = (FIRST_BIRTH_DATE, BIRTH_SPAN_DAYS) if birth else (FIRST_DATE, DATE_SPAN_DAYS)
        return (first + timedelta(days=self.rng.randrange(span))).isoformat()

    def time(self) -> str:
        """An RFC 3339 time of day in UTC, on a quarter hour."""
        return f"{self.rng.randrange(6, 22):02d}:{self.rng.choice((0, 15, 30, 45)):02d}:00Z"

    def datetime(self) -> str:
        """An RFC 3339 date-time in UTC."""
        return f"{self.date()}T{self.time()}"

    def uuid(self) -> str:
        """A random version-4 UUID."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def ipv4(self) -> str:
        """A public-looking IPv4 address."""
        return ".".join(str(self.rng.randint(1, 254)) for _ in range(4))

    def ipv6(self) -> str:
        """An IPv6 address."""
        return str(ipaddress.IPv6Address(self.rng.getrandbits(128)))

    def word(self) -> str:
        """One English word."""
        return self.rng.choice(_pool("word"))

"""What a query states, in the forms argument values take: its text normalised for comparison,
its words, the numbers it writes (digits with separators, decimals, `2.5k`, `15%`, number words)
and the dates it names (ISO, `03/05/2024`, `May 3rd 2024`, `3 May`; `today`, `tomorrow` and
other relative words mean any date).

Pure functions; the grounding stage asks whether an argument value is among these.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property, lru_cache

from dateutil import parser as date_parser

_SPACE = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_WORD = re.compile(r"[^\W_]+")
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[^\W\d_])|(?<=[^\W\d_])(?=\d)")
UNSPACED_SCRIPT = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-\u2212])?(?P<digits>\d{1,3}(?:,\d{3})+|\d+)(?P<fraction>\.\d+)?"
    r"(?P<exponent>e[-+]?\d+)?"
    r"(?P<suffix>\s?(?:k|m|bn|b|thousand|million|billion)\b|%)?"
    r"(?:\s?(?P<unit>[^\W\d_]+))?",
    re.IGNORECASE,
)
_CONVERSIONS = {
    "minute": (60,),
    "min": (60,),
    "hour": (60, 3600),
    "hr": (60, 3600),
    "day": (24, 86400),
    "week": (7,),
    "year": (12, 365),
    "km": (1000,),
    "kilometer": (1000,),
    "kilometre": (1000,),
    "kg": (1000,),
    "ft": (12,),
    "foot": (12,),
    "feet": (12,),
    "m": (100, 1000),
    "meter": (100, 1000),
    "metre": (100, 1000),
}
"""Factors to the smaller units a value may be given in, by the unit word after a number
(`3 minutes` may be `180` seconds)."""
_SI_PREFIX = re.compile(r"(?P<prefix>[mμun])(?:h|f|a|v|w|g|l|s|m|hz|j|ω)")
_PREFIX_FACTOR = {"m": 1e-3, "μ": 1e-6, "u": 1e-6, "n": 1e-9}
"""A unit with a metric prefix (`50mH` may be 0.05, `100µF` 0.0001)."""
_CLOCK_HOUR = re.compile(r"\b(1[0-2]|0?[1-9])(?::[0-5]\d)?\s?(am|pm|a\.m\.|p\.m\.)", re.IGNORECASE)
_UNSPACED_LIST = re.compile(r"\b\d+(?:,\d+)+\b")
_DOZENS = re.compile(r"\b(\d+|[a-z]+)\s+dozens?\b")
_FEET_INCHES = re.compile(r"(\d+)\s?(?:ft|feet|foot|')\s?(\d+)\s?(?:in|inches|\")?")
_SCALE = {
    "k": 1e3,
    "thousand": 1e3,
    "m": 1e6,
    "million": 1e6,
    "b": 1e9,
    "bn": 1e9,
    "billion": 1e9,
}
_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "thousand": 1000,
    "million": 1_000_000,
    "a dozen": 12,
    "dozen": 12,
    "half": 0.5,
    "quarter": 0.25,
    "single": 1,
    "once": 1,
    "twice": 2,
    "double": 2,
    "triple": 3,
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "week": 7,
    "fortnight": 14,
    "decade": 10,
    "century": 100,
    "month": 30,
    "monthly": 12,
    "quarterly": 4,
    "weekly": 52,
    "daily": 365,
    "semiannually": 2,
    "biannually": 2,
}
_NUMBER_WORDS = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True)) + r")\b"
)
_TENS_UNITS = re.compile(
    r"\b(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)[- ](one|two|three|four|five|six|"
    r"seven|eight|nine)\b"
)
_RELATIVE_DATES = re.compile(
    r"\b(today|tonight|tomorrow|yesterday|now|current(?:ly)?|next|last|this|coming|upcoming|"
    r"weekend|monday|tuesday|wednesday|thursday|friday|saturday|sunday|ago|later|week|month|year)\b"
)
DATE_CANDIDATES = re.compile(
    r"\b\d{4}-\d{1,2}-\d{1,2}\b"
    r"|\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b"
    r"|\b\d{4}/\d{1,2}/\d{1,2}\b"
    r"|\b(?:\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?)?"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
    r"(?:\s+\d{1,2}(?:st|nd|rd|th)?)?(?:,?\s+\d{4})?\b",
    re.IGNORECASE,
)


def normalise(text: str) -> str:
    """Unicode NFKC, casefolded, punctuation and underscores turned into spaces, whitespace
    collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    spaced = _DIGIT_LETTER.sub(" ", _PUNCTUATION.sub(" ", folded))
    return _SPACE.sub(" ", spaced).strip()


def words(text: str) -> list[str]:
    """The normalised words of `text`."""
    return _WORD.findall(normalise(text))


_IRREGULAR = {"women": "woman", "men": "man", "children": "child", "people": "person"}


@lru_cache(maxsize=1 << 16)  # called for every word of every query and tool text
def stem(word: str) -> str:
    """A crude English stem, enough to match `flights` with `flight` and `booked` with `book`."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    for suffix in ("ies", "es", "s", "ing", "ed"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def numbers_in(text: str) -> set[float]:
    """Every number `text` states, in each form a value may take it in (15% is 15 and 0.15)."""
    found: set[float] = set()
    for forms in written_numbers(text):
        found |= forms
    lowered = unicodedata.normalize("NFKC", text).casefold()
    for feet, inches in _FEET_INCHES.findall(lowered):
        found.add(int(feet) * 12 + int(inches))
    for listed in _UNSPACED_LIST.findall(lowered):  # `[200,300]` lists 200 and 300
        found |= {float(part) for part in listed.split(",")}
    for count in _DOZENS.findall(lowered):
        found.add(12 * (float(count) if count.isdigit() else _UNITS.get(count, 1)))
    for hour, half in _CLOCK_HOUR.findall(lowered):
        found.add(int(hour) % 12 + (12 if half.startswith("p") else 0))
    for tens, unit in _TENS_UNITS.findall(lowered):
        found.add(_UNITS[tens] + _UNITS[unit])
    found |= {float(_UNITS[word]) for word in _NUMBER_WORDS.findall(lowered)}
    return found


def written_numbers(text: str) -> list[set[float]]:
    """The numbers `text` writes in digits, each as the set of forms a value may take it in
    (`2.5k`: 2.5 and 2500; `15%`: 15 and 0.15; `3 minutes`: 3 and 180)."""
    lowered = unicodedata.normalize("NFKC", text).casefold()
    numbers = []
    for match in _NUMBER.finditer(lowered):
        written = match["digits"].replace(",", "") + (match["fraction"] or "")
        value = float(written + (match["exponent"] or ""))
        if match["sign"]:
            value = -value
        forms = {value}
        suffix = (match["suffix"] or "").strip()
        if suffix == "%":
            forms.add(value / 100)
        elif suffix in _SCALE:
            forms.add(value * _SCALE[suffix])
        unit = match["unit"] or ""
        for name in {unit, unit.removesuffix("s"), stem(unit)}:
            forms |= {value * factor for factor in _CONVERSIONS.get(name, ())}
        if prefixed := _SI_PREFIX.fullmatch(unit):
            forms.add(value * _PREFIX_FACTOR[prefixed["prefix"]])
        numbers.append(forms)
    return numbers


def dates_in(text: str) -> set[date | tuple[int, int]]:
    """The calendar dates `text` writes out (day first and month first where both read); a
    date written without its year (`April 3rd`) as its (month, day)."""
    found: set[date | tuple[int, int]] = set()
    for match in DATE_CANDIDATES.finditer(text):
        candidate = match.group(0).strip()
        if not any(ch.isdigit() for ch in candidate):
            continue
        has_year = bool(re.search(r"\d{4}|[/.]\d{2}\b", candidate))
        for dayfirst in (False, True):
            try:
                parsed = date_parser.parse(candidate, dayfirst=dayfirst, default=_NO_YEAR)
            except (ValueError, OverflowError):
                continue
            found.add(parsed.date() if has_year else (parsed.month, parsed.day))
    return found


_NO_YEAR = datetime(2000, 1, 1)


def as_dates(value: str) -> set[date]:
    """The dates a value string may hold (`2024-05-03`, `2024-05-03T10:00`, `05/03/2024` read
    month first and day first); empty when it holds none."""
    if not re.search(r"\d", value) or len(value) > 40:
        return set()
    found = set()
    for dayfirst in (False, True):
        try:
            found.add(date_parser.parse(value, dayfirst=dayfirst, default=_NO_YEAR).date())
        except (ValueError, OverflowError):
            continue
    return found


@dataclass
class QueryText:
    """A query, read once into the forms argument values are compared in."""

    query: str

    @cached_property
    def normalised(self) -> str:
        return f" {normalise(self.query)} "

    @cached_property
    def compact(self) -> str:
        """The normalised query without spaces (`New York` matches `newyork`, `3-4` `34`)."""
        return self.normalised.replace(" ", "")

    @cached_property
    def stems(self) -> set[str]:
        return {stem(word) for word in words(self.query)}

    @cached_property
    def numbers(self) -> set[float]:
        return numbers_in(self.query)

    @cached_property
    def dates(self) -> set[date | tuple[int, int]]:
        return dates_in(self.query)

    def states_date(self, day: date) -> bool:
        """The query writes `day` out, with its year or without."""
        return day in self.dates or (day.month, day.day) in self.dates

    @cached_property
    def relative_dates(self) -> bool:
        """The query speaks of a date without writing one out (today, next Monday...)."""
        return bool(_RELATIVE_DATES.search(self.query.casefold()))

    def states_text(self, value: str) -> bool:
        """`value`, normalised, is a run of whole words of the query (or the same letters)."""
        wanted = normalise(value)
        if not wanted:
            return True
        if f" {wanted} " in self.normalised:
            return True
        squeezed = wanted.replace(" ", "")
        if UNSPACED_SCRIPT.search(squeezed):  # scripts written without spaces between words
            return squeezed in self.compact
        return len(squeezed) >= 4 and squeezed in self.compact

    def abbreviates(self, code: str) -> bool:
        """`code` (a normalised word) abbreviates words of the query: their initials (`SD` for
        San Diego) or the start of one (`DEN` for Denver, as airport and ticker codes do)."""
        if code in self.initials:
            return True
        return len(code) >= 3 and any(
            word.startswith(code) and len(word) > len(code) for word in words(self.query)
        )

    @cached_property
    def initials(self) -> set[str]:
        """Initials of runs of two to four capitalised words (`San Diego` gives `sd`), and of
        three or four words in any case (`social security numbers` gives `ssn`)."""
        capitalised = re.findall(r"\b[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*)+", self.query)
        found = set()
        letters = [word[0] for word in words(self.query)]
        for size in (3, 4):
            for start in range(len(letters) - size + 1):
                found.add("".join(letters[start : start + size]))
        for run in capitalised:
            letters = [word[0].lower() for word in run.split()]
            for size in range(2, 5):
                for start in range(len(letters) - size + 1):
                    found.add("".join(letters[start : start + size]))
        return found

    def has_word(self, word: str) -> bool:
        """The query has the word, stemmed, or a longer or shorter form of it (`German` for
        `Germany`: one is the other plus at most three letters, sharing five or more)."""
        stemmed = stem(word)
        if stemmed in self.stems:
            return True
        if len(stemmed) < 5:
            return False
        return any(
            len(other) >= 5
            and abs(len(other) - len(stemmed)) <= 3
            and (other.startswith(stemmed) or stemmed.startswith(other))
            for other in self.stems
        )

    def share_of_words(self, value: str) -> float:
        """How many of the value's words the query has (`has_word`), as a share."""
        value_words = words(value)
        if not value_words:
            return 1.0
        return sum(self.has_word(word) for word in value_words) / len(value_words)

    def states_number(self, value: float) -> bool:
        """The query states the number, or its size with the sign left to words (`a loss of
        $1000` for -1000, `119.5 W` for -119.5)."""
        size = abs(value)
        return any(
            abs(size - abs(number)) <= 1e-9 * max(1.0, abs(number)) for number in self.numbers
        )

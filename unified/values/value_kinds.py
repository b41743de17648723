"""Which kind of value a parameter wants, judged from its name and description: a city, an
email, a date... for strings, and a plausible range for numbers."""

from __future__ import annotations

import re
from functools import cache


def word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of `text`, as a set (for word lists kept as prose)."""
    return frozenset(text.split())


SHORT_FORMS = {"country": "country_code", "language": "language_code", "currency": "currency_code"}
"""A kind to use instead when the schema allows only short strings (maxLength <= 3)."""

# (kind, phrases): a parameter whose name words contain one of the phrases wants that kind.
# Checked in order; multi-word phrases come before the single words they contain.
NAME_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("email", ("email", "e mail", "mail")),
    ("first_name", ("first name", "firstname", "given name", "forename")),
    ("last_name", ("last name", "lastname", "surname", "family name")),
    ("user_name", ("username", "user name", "login", "handle", "screen name", "nickname")),
    ("full_name", ("full name", "fullname", "author", "customer name", "contact name")),
    ("full_name", ("guest name", "passenger name", "member name", "traveler name", "holder")),
    ("full_name", ("person", "owner", "recipient", "assignee", "sender", "artist", "singer")),
    ("full_name", ("actor", "director", "composer", "player", "employee", "student", "patient")),
    ("phone", ("phone", "telephone", "mobile", "tel", "fax")),
    ("url", ("url", "uri", "link", "website", "homepage", "href", "webhook", "callback")),
    ("hostname", ("hostname", "host", "domain", "server")),
    ("currency_code", ("currency",)),
    ("country_code", ("country code",)),
    ("language_code", ("language code", "lang", "locale")),
    ("language", ("language",)),
    ("timezone", ("timezone", "time zone", "tz")),
    ("file_name", ("file name", "filename", "file", "attachment", "image", "photo")),
    ("mime_type", ("mime", "content type", "media type", "mimetype")),
    ("file_path", ("path", "directory", "folder", "dir")),
    ("birth_date", ("birth", "birthday", "dob", "birthdate")),
    ("date", ("date", "day", "deadline", "since", "until", "check in", "check out")),
    ("datetime", ("timestamp", "datetime", "date time")),
    ("time", ("time",)),
    ("postcode", ("zip", "zipcode", "zip code", "postal", "postcode", "postal code")),
    ("street_address", ("street", "address line", "street address")),
    ("address", ("address",)),
    ("city", ("city", "town", "location", "place", "destination", "origin", "departure")),
    ("city", ("arrival", "venue", "locality", "municipality")),
    ("country", ("country", "nation", "nationality")),
    ("state", ("state", "province", "region", "county")),
    ("company", ("company", "organization", "organisation", "org", "employer", "business")),
    ("company", ("vendor", "brand", "manufacturer", "publisher")),
    ("job", ("job", "occupation", "profession")),
    ("color", ("color", "colour")),
    ("password", ("password", "passphrase", "pwd")),
    ("id", ("uuid", "guid")),
    ("token", ("token", "api key", "apikey", "secret", "key", "hash", "signature", "nonce")),
    ("isbn", ("isbn",)),
    ("ticker", ("ticker", "symbol", "stock")),
    ("version", ("version",)),
    ("query", ("query", "keyword", "search", "term", "topic", "subject", "criteria")),
    ("query", ("filter", "prompt", "question")),
    ("title", ("title", "headline", "caption")),
    ("text", ("description", "text", "message", "content", "comment", "body", "note")),
    ("text", ("summary", "review", "bio", "details", "instruction", "feedback", "reason")),
    ("math_function", ("function", "expression", "equation", "formula", "polynomial")),
    ("variable", ("variable", "var")),
    ("unit", ("unit", "scale")),
    ("code", ("code",)),
    ("status", ("status",)),
    ("id", ("id", "identifier", "ref", "reference", "sku")),
    ("sort", ("sort", "order", "direction")),
    ("gender", ("gender", "sex")),
    ("proper_name", ("name",)),
    ("word", ("tag", "category", "genre", "type", "kind", "label", "group")),
)

EXACT_NAMES = {"name": "first_name", "from": "city", "to": "city", "where": "city", "q": "query"}
"""Short names that only mean something on their own."""

# Descriptions that name a code system decide the kind whatever the parameter is called.
DESCRIPTION_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("currency_code", re.compile(r"\bISO[ -]?4217\b|\bcurrency code", re.IGNORECASE)),
    ("airport", re.compile(r"\bIATA\b|\bairport code", re.IGNORECASE)),
    ("country_code", re.compile(r"\bISO[ -]?3166\b|\bcountry code", re.IGNORECASE)),
    ("language_code", re.compile(r"\bISO[ -]?639\b|\blanguage code", re.IGNORECASE)),
    ("date", re.compile(r"YYYY-MM-DD", re.IGNORECASE)),
    ("clock", re.compile(r"\bHH:MM\b(?!:SS)")),
    ("email", re.compile(r"\be-?mail\b", re.IGNORECASE)),
    ("url", re.compile(r"\bURL\b", re.IGNORECASE)),
)

# Name-free hints taken from a description when the name says nothing.
DESCRIPTION_KINDS = frozenset({"city", "country", "email", "url", "date", "phone", "company"})

# (phrases, low, high, decimals): a number parameter whose name words contain a phrase is drawn
# from [low, high] (decimals applies to non-integers).
NUMBER_RULES: tuple[tuple[tuple[str, ...], float, float, int], ...] = (
    (("lat", "latitude"), -90, 90, 4),
    (("lon", "lng", "long", "longitude"), -180, 180, 4),
    (("year",), 1990, 2030, 0),
    (("month",), 1, 12, 0),
    (("day",), 1, 28, 0),
    (("hour",), 0, 23, 0),
    (("minute", "second"), 0, 59, 0),
    (("age",), 18, 90, 0),
    (("years", "months", "weeks"), 1, 30, 0),
    (("days", "nights"), 1, 14, 0),
    (("hours", "minutes", "seconds", "time", "duration"), 1, 120, 1),
    (("percent", "percentage"), 1, 100, 1),
    (("rate", "probability", "ratio", "fraction", "p"), 0.01, 0.99, 2),
    (("price", "amount", "cost", "income", "salary", "budget", "principal", "fee"), 10, 5000, 2),
    (("investment", "balance", "payment", "deposit", "revenue", "total"), 10, 5000, 2),
    (("temperature", "temp"), -20, 40, 1),
    (("weight", "mass"), 1, 120, 1),
    (("speed", "velocity"), 1, 120, 1),
    (("acceleration", "gravity"), 1, 20, 1),
    (("distance",), 1, 1000, 1),
    (("radius", "length", "width", "height", "side", "base", "depth", "diameter"), 1, 50, 1),
    (("angle",), 1, 90, 1),
    (("party size", "group size", "party", "guests", "passengers", "people"), 1, 8, 0),
    (("adults", "children", "rooms", "tickets"), 1, 6, 0),
    (("bedrooms", "bathrooms", "floors", "stops", "players", "members"), 1, 6, 0),
    (("seats", "quantity", "qty", "copies"), 1, 6, 0),
    (("limit", "count", "size", "top", "results", "max"), 1, 50, 0),
    (("page",), 1, 10, 0),
    (("offset", "skip"), 0, 50, 0),
    (("id",), 1, 99999, 0),
)
DEFAULT_INTEGER_RANGE = (1, 100)
DEFAULT_NUMBER_RANGE = (0.5, 500.0)

_WORD_SPLIT = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def identifier_words(name: str) -> list[str]:
    """The words of an identifier as written: `IATA_lookupCode` -> ["IATA", "lookup", "Code"]."""
    return _WORD_SPLIT.findall(name)


def name_words(name: str) -> list[str]:
    """The words of an identifier, lowercased: `originCity_2` -> ["origin", "city", "2"]."""
    return [word.lower() for word in _WORD_SPLIT.findall(name)]


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@cache
def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    return re.compile(rf"(?:^| ){re.escape(phrase)}(?: |$)")


def _matches(words: str, phrases: tuple[str, ...]) -> bool:
    return any(_phrase_pattern(phrase).search(words) for phrase in phrases)


@cache
def string_kind(name: str, description: str, max_length: int | None) -> str | None:
    """The kind of string a parameter wants, judged from its description and name, or None."""
    kind = _string_kind(name, description)
    if kind is not None and max_length is not None and max_length <= 3:
        kind = SHORT_FORMS.get(kind, kind)
    return kind


def _string_kind(name: str, description: str) -> str | None:
    for kind, pattern in DESCRIPTION_RULES:
        if pattern.search(description):
            return kind
    exact = EXACT_NAMES.get(name.lower())
    if exact is not None:
        return exact
    words = " ".join(_singular(word) for word in name_words(name))
    raw = " ".join(name_words(name))
    for kind, phrases in NAME_RULES:
        if _matches(words, phrases) or _matches(raw, phrases):
            return kind
    described = " ".join(_singular(word) for word in name_words(description))
    for kind, phrases in NAME_RULES:
        if kind in DESCRIPTION_KINDS and _matches(described, phrases):
            return kind
    return None


@cache
def number_range(name: str, integer: bool) -> tuple[float, float, int]:
    """A plausible (low, high, decimals) for a number parameter called `name`."""
    words = " ".join(name_words(name))
    for phrases, low, high, decimals in NUMBER_RULES:
        if _matches(words, phrases):
            return low, high, 0 if integer else max(decimals, 1)
    low, high = DEFAULT_INTEGER_RANGE if integer else DEFAULT_NUMBER_RANGE
    return low, high, 0 if integer else 2

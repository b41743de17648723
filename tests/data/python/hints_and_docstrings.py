"""Written for ActionForge's tests (not a public document): a module of functions that uses every
docstring style (Google, NumPy, reST) and type hint the Python catalog loader maps.

Loading it as a catalog must never run it: the top-level code below writes a marker file and
raises.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Literal, NotRequired, Optional, TypedDict, Union, overload

import a_package_that_is_not_installed  # noqa: F401

DEFAULT_REGION = "eu-west-1"


class Priority(Enum):
    LOW = "low"
    HIGH = "high"


class Person(TypedDict):
    name: str
    email: NotRequired[str]


class Category(TypedDict, total=False):
    title: str
    children: list["Category"]


@dataclass
class Ticket:
    title: str
    priority: Priority
    labels: list[str] = field(default_factory=list)


def search_flights(
    origin: str,
    destination: str,
    passengers: int = 1,
    max_price: float | None = None,
    nonstop: bool = False,
    cabin: Literal["economy", "business"] = "economy",
    *,
    airlines: list[str] | None = None,
    depart_after: datetime.date | None = None,
) -> list[dict[str, Any]]:
    """Search one-way flights between two airports.

    Results are sorted by price.

    Args:
        origin: IATA code of the departure airport.
        destination: IATA code of the arrival airport.
        passengers: How many seats to book.
        max_price: Highest acceptable fare in euros.
        nonstop: Only direct flights.
        cabin: Cabin class.
        airlines: Carriers to consider.
        depart_after: Earliest departure date.

    Returns:
        The matching flights, cheapest first.
    """
    return []


def summarize_scores(
    scores: Sequence[float],
    weights: Optional[Dict[str, float]] = None,
    bounds: tuple[float, float] = (0.0, 1.0),
    tags: set[str] = frozenset(),
    ids: tuple[int, ...] = (),
) -> Mapping[str, float]:
    """Summarize a list of scores.

    Parameters
    ----------
    scores : sequence of float
        The scores to summarize.
    weights : dict, optional
        Weight of each score's source.
    bounds : tuple of float
        Lowest and highest possible score.
    tags : set of str
        Labels attached to the summary.
    ids : tuple of int
        Identifiers of the scored items.

    Returns
    -------
    Mapping[str, float]
        Mean, minimum and maximum.
    """
    return {}


def create_ticket(
    title: str,
    priority: Priority,
    assignee: "Person | None" = None,
    labels: List[str] = [],  # noqa: B006
    extra: Mapping[str, Any] = {},  # noqa: B006
    *args: Any,
    **kwargs: Any,
) -> Ticket:
    """Open a support ticket.

    :param title: One-line summary of the problem.
    :param priority: How urgent the ticket is.
    :param assignee: Who should handle it.
    :param labels: Free-form labels.
    :param extra: Any other fields for the tracker.
    :returns: The created ticket.
    """
    return Ticket(title, priority)


def legacy_lookup(code, retries=3, region=DEFAULT_REGION):
    """Look up a product code in the legacy catalog.

    Args:
        code (str): The product code.
        retries (int): How many times to retry.
        region: Data-centre region.
    """


def convert(value: Union[int, str], unit: "Optional[str]" = None) -> float:
    """Convert a quantity to SI units.

    :param value: The quantity.
    :type value: int or str
    :param unit: Unit of the quantity.
    :rtype: float
    """
    return 0.0


def merge_maps(maps: list[dict[str, list[int]]], strategy: Any = None) -> Dict[str, List[int]]:
    """Merge several maps of lists.

    Args:
        maps: The maps to merge.
        strategy: How to merge clashing keys.
    """
    return {}


def categorize(root: Category, owner: Person) -> None:
    """Store a category tree.

    Args:
        root: The top category.
        owner: Who owns the tree.
    """


async def fetch_page(url: str, timeout: float = 10.0) -> str:
    """Download a web page."""
    return ""


def clamp(value: float, /, low: float = 0.0, high: float = 1.0) -> float:
    return min(max(value, low), high)


@overload
def scale(value: int) -> int: ...


@overload
def scale(value: float) -> float: ...


def scale(value: float, factor: float = 2.0) -> float:
    """Multiply a value by a factor."""
    return value * factor


def _private_helper(x: int) -> int:
    return x


class Calculator:
    def add(self, a: int, b: int) -> int:
        return a + b


with open(__file__ + ".executed", "w") as marker:
    marker.write("this module was executed")
raise SystemExit("this module is test data and must never be run")

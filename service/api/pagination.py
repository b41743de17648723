"""The paging parameters of the list routes and their bounds.

Unbounded, an `offset` past the database's integer range (9223372036854775807 for both) failed
inside the query with a 500; the bounds turn it into a 422 that names them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000_000

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, 1 to {MAX_LIMIT}.")]
Offset = Annotated[
    int, Query(ge=0, le=MAX_OFFSET, description=f"Items to skip, 0 to {MAX_OFFSET:,}.")
]

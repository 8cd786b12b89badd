"""The one paginator: every page of an MLflow ``search_*``/``list_*`` call, following ``page_token``.

MLflow answers those calls with a ``PagedList`` whose ``token`` names the next page (empty or None:
the last one). :func:`pages` makes the call again with that token until there is none, so the
requests are exactly the loop each reader used to write itself: the first with
``page_token=None``, then one per further page, the same arguments every time. :func:`items` is
the same, item by item. Both are generators: a reader that stops early makes no further request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from mlflow.store.entities.paged_list import PagedList

T = TypeVar("T")


def pages(call: Callable[..., PagedList[T]], *args: Any, **kwargs: Any) -> Iterator[PagedList[T]]:
    """``call(*args, **kwargs, page_token=...)`` page after page, the first with no token."""
    token: str | None = None
    while True:
        page = call(*args, **kwargs, page_token=token)
        yield page
        token = page.token
        if not token:
            return


def items(call: Callable[..., PagedList[T]], *args: Any, **kwargs: Any) -> Iterator[T]:
    """Every item of every page of ``call`` (see :func:`pages`)."""
    for page in pages(call, *args, **kwargs):
        yield from page

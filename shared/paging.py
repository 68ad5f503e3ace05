"""One way to page a list: `?page=&page_size=` with the same bounds everywhere, and one answer
shape, `Page[T]` = `{items, page, page_size, total}`.

A controller takes `paging: Paging` (provided by every service app, see `shared/service.py`) and
hands `paging.skip` / `paging.limit` to its store. The bounds keep a huge `page` from becoming a
huge `skip` (a 500 from the database before they existed) and a huge `page_size` from loading a
whole collection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import Parameter

T = TypeVar("T")

MAX_PAGE = 10_000
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 20

PageNumber = Annotated[int, Parameter(ge=1, le=MAX_PAGE, description="1-based page number")]
PageSize = Annotated[int, Parameter(ge=1, le=MAX_PAGE_SIZE, description="items per page")]


@dataclass(frozen=True)
class Paging:
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def skip(self) -> int:
        return (self.page - 1) * self.page_size

    @property
    def limit(self) -> int:
        return self.page_size

    def of(self, items: list[T], total: int) -> Page[T]:
        """The page answer for `items` (already this page's slice) out of `total`."""
        return Page(items=items, page=self.page, page_size=self.page_size, total=total)

    def slice(self, items: list[T]) -> Page[T]:
        """Page a list that is already in memory (small, bounded lists only)."""
        return self.of(items[self.skip : self.skip + self.limit], len(items))


def provide_paging(page: PageNumber = 1, page_size: PageSize = DEFAULT_PAGE_SIZE) -> Paging:
    """Litestar dependency: `paging: Paging` in a handler's signature."""
    return Paging(page=page, page_size=page_size)


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    page: int
    page_size: int
    total: int

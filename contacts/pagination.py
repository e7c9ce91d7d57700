"""Pagination for /api/contacts/ that stays cheap at a million contacts.

Counting every match is the expensive part of a list: the first page of all contacts reads 50
index entries, its exact count reads a million. So:

- up to 10,000 matches the count is exact (counted with ``LIMIT 10001``, which costs little);
- beyond that, if PostgreSQL's planner expects at least 50,000 (a broad list: everyone, or
  everyone opted in to SMS), ``count`` is the planner's estimate and ``countIsExact`` is false;
- otherwise (10,000 to about 50,000 matches) the exact count is taken, which is still quick.

With an estimated count, ``next`` is decided by whether another row exists, never by the estimate,
so a client that follows ``next`` until it is null sees every contact exactly once.
"""

from __future__ import annotations

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.utils.functional import cached_property
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from contacts.selectors import BROAD_MATCH, planner_estimate

COUNT_EXACT_UP_TO = 10_000
ESTIMATE_FROM = BROAD_MATCH  # 50,000


class ContactPage(Page):
    has_more: bool | None = None

    def has_next(self):
        if self.has_more is not None:
            return self.has_more
        return super().has_next()


class ContactPaginator(Paginator):
    count_is_exact = True

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        probe = queryset.order_by()[: COUNT_EXACT_UP_TO + 1].count()
        if probe <= COUNT_EXACT_UP_TO:
            return probe
        estimate = planner_estimate(queryset)
        if estimate is not None and estimate >= ESTIMATE_FROM:
            self.count_is_exact = False
            return estimate
        return queryset.count()

    def validate_number(self, number):
        self.count  # noqa: B018 - counting decides whether the count, and so the last page, is known
        if self.count_is_exact:
            return super().validate_number(number)
        try:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger("That page number is not an integer") from None
        if number < 1:
            raise EmptyPage("That page number is less than 1")
        return number

    def page(self, number):
        number = self.validate_number(number)
        if self.count_is_exact:
            return super().page(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])
        if not rows and number > 1:
            raise EmptyPage("That page contains no results")
        page = self._get_page(rows[: self.per_page], number, self)
        page.has_more = len(rows) > self.per_page
        return page

    def _get_page(self, *args, **kwargs):
        return ContactPage(*args, **kwargs)


class ContactPagination(PageNumberPagination):
    django_paginator_class = ContactPaginator

    def get_paginated_response(self, data):
        paginator = self.page.paginator
        return Response(
            {
                "count": paginator.count,
                "countIsExact": paginator.count_is_exact,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        response["properties"]["count"]["description"] = (
            "Exact up to 10,000; for broader lists PostgreSQL's estimate (then countIsExact is false)."
        )
        response["properties"]["countIsExact"] = {"type": "boolean"}
        response["required"] = [*response["required"], "countIsExact"]
        return response

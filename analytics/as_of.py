"""What a figure as of a moment T may see: the one definition every analytics figure uses.

As of T a figure sees, and nothing else:

- purchases made at or before T (`occurred_at <= T`), with what had been returned by T: a return dated after T
  is not one yet (`Purchase.objects.as_of`; not fully returned by T: `counted_as_of`, net amount `NET_THEN`);
- NPS answers given at or before T;
- members enrolled at or before T, or who had bought by T: a purchase shows the member was one then, even when
  the history was imported after the member enrolled here (a till enrols today, the old system's purchases come
  later);
- ledger entries that occurred at or before T, and lots as they stood at T (`analytics.liability`).

Times are business times (`occurred_at`, `answered_at`, `enrolled_at`), not when a row was written: an import of
history writes today what happened then, and a refresh as of the import's last day must see it.
"""

from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet

from analytics.models import NpsAnswer
from loyalty.models import Entry, Purchase, Return
from members.models import Member, Program


def qualifying_purchases(program: Program, as_of: datetime) -> QuerySet[Purchase]:
    """The program's purchases made by `as_of` and not fully returned by then (their net: `NET_THEN`). When no
    return of the program is dated after `as_of` (a refresh as of now), the purchases' returned totals are
    those of then, and the per-purchase look-up of later returns is skipped (one cheap query decides)."""
    returns_after = Return.objects.filter(program=program, occurred_at__gt=as_of).exists()
    return Purchase.objects.counted_as_of(as_of, returns_after=returns_after).filter(program=program)


def answers_as_of(program: Program, as_of: datetime) -> QuerySet[NpsAnswer]:
    """The program's NPS answers given by `as_of`."""
    return NpsAnswer.objects.filter(program=program, answered_at__lte=as_of)


def members_as_of(program: Program, as_of: datetime) -> QuerySet[Member]:
    """The program's members as of `as_of`: enrolled by then, or with a purchase made by then."""
    bought = Purchase.objects.filter(member_id=OuterRef("pk"), occurred_at__lte=as_of)
    return Member.objects.filter(program=program).filter(Q(enrolled_at__lte=as_of) | Exists(bought))


def entries_as_of(program: Program, as_of: datetime) -> QuerySet[Entry]:
    """The program's ledger entries that occurred by `as_of`."""
    return Entry.objects.filter(program=program, occurred_at__lte=as_of)

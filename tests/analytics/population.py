"""A small population whose every analytics figure is computed by hand in tests/analytics/test_member_analytics.py;
the segment events and the manager's RFM API read it too."""

from datetime import UTC, datetime

from tests.builders import purchase, return_
from tests.factories import MemberFactory

AS_OF = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
NEXT_DAY = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)


def at(month: int, day: int, hour: int, minute: int = 0, year: int = 2025) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def population(program) -> dict[str, object]:
    """Eight members of a program in Europe/Prague (summer: UTC+2), seen as of 2025-06-30 12:00 UTC.

    ana   3 purchases on 3 days, one partly returned (30 - 10): monetary 170, mean gap (June 29 - May 2) / 2
    ben   one purchase only
    cid   two purchases on one local day (June 20 00:30 and 23:30 in Prague; two UTC days)
    dan   one purchase kept, a later one fully returned (not counted: his last purchase is in January)
    hana  two purchases 18 days apart
    eva   no purchase; fred: his only purchase fully returned; gus: a purchase after as_of only (July 2)
    """
    members = {
        name: MemberFactory(program=program, first_name=name)
        for name in ("ana", "ben", "cid", "dan", "hana", "eva", "fred", "gus")
    }
    purchase(members["ana"], "A1", "30.00", occurred_at=at(5, 2, 10))
    return_(program, "A1", amount="10.00", occurred_at=at(5, 2, 10))
    purchase(members["ana"], "A2", "50.00", occurred_at=at(6, 1, 10))
    purchase(members["ana"], "A3", "100.00", occurred_at=at(6, 29, 10))
    purchase(members["ben"], "B1", "80.00", occurred_at=at(3, 15, 9))
    purchase(members["cid"], "C1", "10.00", occurred_at=at(6, 19, 22, 30))
    purchase(members["cid"], "C2", "15.00", occurred_at=at(6, 20, 21, 30))
    purchase(members["dan"], "D1", "60.00", occurred_at=at(1, 10, 10))
    purchase(members["dan"], "D2", "40.00", occurred_at=at(6, 25, 10))
    return_(program, "D2", amount="40.00", occurred_at=at(6, 25, 10))
    purchase(members["hana"], "H1", "100.00", occurred_at=at(6, 10, 10))
    purchase(members["hana"], "H2", "100.00", occurred_at=at(6, 28, 10))
    purchase(members["fred"], "F1", "20.00", occurred_at=at(6, 1, 10))
    return_(program, "F1", amount="20.00", occurred_at=at(6, 1, 10))
    purchase(members["gus"], "G1", "20.00", occurred_at=at(7, 2, 10))
    return members

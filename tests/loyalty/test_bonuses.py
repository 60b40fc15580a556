from datetime import UTC, date, datetime

import pytest

from loyalty.exceptions import EventConflict
from loyalty.models import Account, Award
from loyalty.services.bonuses import birthday_bonuses, event_record
from loyalty.services.enrollment import member_enroll
from loyalty.tasks import birthday_bonuses_task
from members.services.members import member_suspend
from tests.builders import rule
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def event_rule(program, event, points, **fields):
    return rule(program, name=f"{event} bonus", kind="event", event=event, points=points, **fields)


def available(member):
    return Account.objects.get(pk=member.pk).available


def earned(member):
    return Account.objects.get(pk=member.pk).earned


def test_signup_bonus_on_enrollment(program):
    event_rule(program, "signup", 100)

    member = member_enroll(program=program, email="new@example.com")

    assert available(member) == 100
    assert Award.objects.get(member=member).event == "signup"


def test_custom_event_awards_once_per_external_id(program, member):
    event_rule(program, "app_review", 40)

    first = event_record(program=program, member=member, event="app_review", external_id="rev-1")
    again = event_record(program=program, member=member, event="app_review", external_id="rev-1")
    nothing = event_record(program=program, member=member, event="newsletter", external_id="nl-1")

    assert (first.points, again.replayed, again.points, nothing.points) == (40, True, 40, 0)
    assert available(member) == 40
    with pytest.raises(EventConflict):
        event_record(program=program, member=MemberFactory(program=program), event="app_review", external_id="rev-1")


def test_event_monthly_cap(program, member):
    event_rule(program, "check_in", 10, cap_per_member_month=25)

    points = [
        event_record(program=program, member=member, event="check_in", external_id=f"c{i}").points for i in range(4)
    ]

    assert points == [10, 10, 5, 0]


def test_birthday_bonus_once_a_year(program):
    event_rule(program, "birthday", 250)
    today = MemberFactory(program=program, birth_date=date(1990, 11, 23))
    other_day = MemberFactory(program=program, birth_date=date(1990, 11, 24))
    suspended = MemberFactory(program=program, birth_date=date(1985, 11, 23))
    member_suspend(member=suspended)
    noon = datetime(2026, 11, 23, 11, tzinfo=UTC)

    assert birthday_bonuses(now=noon, batch_size=1) == 1
    assert birthday_bonuses(now=noon) == 0  # hourly runs: still once
    assert (available(today), Account.objects.filter(pk=other_day.pk).first()) == (250, None)
    assert birthday_bonuses(now=datetime(2027, 11, 23, 11, tzinfo=UTC)) == 1  # next year again
    assert earned(today) == 500


def test_leap_day_birthdays_are_celebrated_on_28_february(program):
    event_rule(program, "birthday", 100)
    leapling = MemberFactory(program=program, birth_date=date(2000, 2, 29))

    assert birthday_bonuses(now=datetime(2027, 2, 28, 12, tzinfo=UTC)) == 1
    assert birthday_bonuses(now=datetime(2028, 2, 28, 12, tzinfo=UTC)) == 0  # 2028 has a 29 February
    assert birthday_bonuses(now=datetime(2028, 2, 29, 12, tzinfo=UTC)) == 1
    assert earned(leapling) == 200


def test_birthday_task_reports(program):
    assert birthday_bonuses_task.apply().get() == {"members": 0}

"""Times a manager types in the admin are in the program's time zone, and the admin shows stored times
there too (members.admin.ProgramScopedAdmin): around midnight and on the days the clocks change
(Europe/Prague: 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00)."""

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest

from loyalty.models import EarningRule
from loyalty.services.ledger import ledger_credit
from loyalty.services.purchases import purchase_simulate
from members.models import Program
from rewards.models import Reward, RewardKind
from tests import builders
from tests.admin.utils import rule_form, url
from tests.factories import MemberFactory, ProgramFactory, RewardFactory

PRAGUE = zoneinfo.ZoneInfo("Europe/Prague")


@pytest.fixture
def prague(db):
    return ProgramFactory(timezone="Europe/Prague", currency="EUR")


def window(start_day, start_time, end_day, end_time):
    return {
        "active_from_0": start_day,
        "active_from_1": start_time,
        "active_until_0": end_day,
        "active_until_1": end_time,
    }


def points_at(program, moment: datetime) -> int:
    member = MemberFactory(program=program)
    data = builders.purchase_data(f"S-{moment:%s}", lines=[builders.line("A", "10.00")], occurred_at=moment)
    return purchase_simulate(program=Program.objects.get(pk=program.pk), member=member, data=data).points


def test_a_weekend_window_typed_in_the_admin_is_the_programs_weekend(su_client, prague):
    # given: Saturday 00:00 to Sunday 23:59 in Prague, the weekend the clocks go forward
    response = su_client.post(
        url("loyalty_earningrule_add"), rule_form(prague, **window("2026-03-28", "00:00", "2026-03-29", "23:59"))
    )

    # then: stored as the instants Prague means (CET before, CEST after the change)
    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = EarningRule.objects.get(name="Weekend bonus")
    assert rule.active_from == datetime(2026, 3, 27, 23, 0, tzinfo=UTC)
    assert rule.active_until == datetime(2026, 3, 29, 21, 59, tzinfo=UTC)
    # and: Saturday 00:30 in Prague earns, Friday 23:30 does not; Sunday 23:30 (CEST) earns, Monday 00:00 not
    assert points_at(prague, datetime(2026, 3, 28, 0, 30, tzinfo=PRAGUE)) == 50
    assert points_at(prague, datetime(2026, 3, 27, 23, 30, tzinfo=PRAGUE)) == 0
    assert points_at(prague, datetime(2026, 3, 29, 23, 30, tzinfo=PRAGUE)) == 50
    assert points_at(prague, datetime(2026, 3, 30, 0, 0, tzinfo=PRAGUE)) == 0


def test_a_window_over_the_autumn_change_keeps_local_midnights(su_client, prague):
    response = su_client.post(
        url("loyalty_earningrule_add"), rule_form(prague, **window("2026-10-24", "00:00", "2026-10-26", "00:00"))
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = EarningRule.objects.get(name="Weekend bonus")
    assert rule.active_from == datetime(2026, 10, 23, 22, 0, tzinfo=UTC)  # CEST, +02:00
    assert rule.active_until == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)  # CET, +01:00
    assert rule.active_until - rule.active_from == timedelta(hours=49)  # the day the clocks go back is 25 h


@pytest.mark.parametrize(
    ("day", "time"),
    [("2026-03-29", "02:30"), ("2026-10-25", "02:30")],
    ids=["does-not-exist", "happens-twice"],
)
def test_a_local_time_the_clock_change_skips_or_repeats_is_refused(su_client, prague, day, time):
    response = su_client.post(url("loyalty_earningrule_add"), rule_form(prague, active_from_0=day, active_from_1=time))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["active_from"]
    assert "Europe/Prague" in errors["active_from"][0]
    assert not EarningRule.objects.exists()


def test_the_change_page_shows_and_keeps_the_programs_local_times(su_client, prague):
    rule = builders.rule(
        prague,
        name="Weekend",
        kind="bonus",
        points=5,
        active_from=datetime(2026, 3, 28, 0, 0, tzinfo=PRAGUE),
        active_until=datetime(2026, 3, 30, 0, 0, tzinfo=PRAGUE),
    )

    page = su_client.get(url("loyalty_earningrule_change", rule.pk))

    html = page.content.decode()
    assert 'name="active_from_0" value="2026-03-28"' in html
    assert 'name="active_from_1" value="00:00:00"' in html
    assert 'name="active_until_0" value="2026-03-30"' in html
    assert "Leave empty to start at once. In the program's time zone." in html
    # saving the page unchanged keeps the instants
    data = rule_form(prague, name="Weekend", points="5", **window("2026-03-28", "00:00:00", "2026-03-30", "00:00:00"))
    data.pop("program")  # read-only once saved
    assert su_client.post(url("loyalty_earningrule_change", rule.pk), data).status_code == 302
    rule.refresh_from_db()
    assert (rule.active_from, rule.active_until) == (
        datetime(2026, 3, 27, 23, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 22, 0, tzinfo=UTC),
    )


def test_two_programs_each_read_in_their_own_time_zone(su_client, prague):
    new_york = ProgramFactory(timezone="America/New_York", currency="EUR")

    for program in (prague, new_york):
        data = rule_form(program, name=f"Rule {program.pk}", active_from_0="2026-03-28", active_from_1="00:00")
        assert su_client.post(url("loyalty_earningrule_add"), data).status_code == 302

    assert EarningRule.objects.get(program=prague).active_from == datetime(2026, 3, 27, 23, 0, tzinfo=UTC)
    assert EarningRule.objects.get(program=new_york).active_from == datetime(2026, 3, 28, 4, 0, tzinfo=UTC)


def reward_form(program, **fields):
    data = {
        "program": program.pk,
        "name": "Easter coffee",
        "description": "",
        "is_active": "on",
        "kind": RewardKind.FIXED_DISCOUNT,
        "value": "5.00",
        "sku": "",
        "voucher_valid_days": "30",
        "points_cost": "100",
        "per_member_limit": "",
        "_save": "1",
    }
    return {**data, **fields}


def test_a_reward_window_typed_in_the_admin_is_in_the_programs_time_zone(su_client, prague):
    response = su_client.post(
        url("rewards_reward_add"), reward_form(prague, **window("2026-10-25", "00:00", "2026-10-26", "00:00"))
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    reward = Reward.objects.get()
    assert (reward.active_from, reward.active_until) == (
        datetime(2026, 10, 24, 22, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 23, 0, tzinfo=UTC),
    )
    page = su_client.get(url("rewards_reward_change", reward.pk)).content.decode()
    assert 'name="active_from_0" value="2026-10-25"' in page
    assert 'name="active_from_1" value="00:00:00"' in page


def test_a_voucher_shows_its_times_in_the_programs_time_zone(su_client, prague):
    member = MemberFactory(program=prague)
    ledger_credit(member=member, amount=100)
    reward = RewardFactory(program=prague, name="Coffee", kind=RewardKind.FIXED_DISCOUNT, value=5, points_cost=1)
    voucher = builders.redeem(member, reward).voucher
    voucher.issued_at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    voucher.expires_at = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # Sunday 00:30 in Prague
    voucher.save(update_fields=["issued_at", "expires_at"])

    listing = su_client.get(url("rewards_voucher_changelist")).content.decode()
    page = su_client.get(url("rewards_voucher_change", voucher.pk)).content.decode()

    assert "2026-03-29 00:30" in listing
    assert "March 29, 2026, 12:30 a.m." in page


def test_a_list_of_one_programs_rows_shows_times_in_its_time_zone(su_client, prague):
    member = MemberFactory(program=prague)
    # Saturday 00:30 in Prague
    builders.purchase(member, "TILL-1", "10.00", occurred_at=datetime(2026, 3, 27, 23, 30, tzinfo=UTC))

    listing = su_client.get(url("loyalty_purchase_changelist")).content.decode()

    assert "March 28, 2026, 12:30 a.m." in listing

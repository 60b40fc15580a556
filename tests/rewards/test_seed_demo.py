import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from analytics.models import NpsAnswer
from loyalty.audit import ledger_audit
from loyalty.models import EarningRule, Purchase, Tier
from members.app_auth import member_app_login
from members.models import ApiKey, Program
from members.services.api_keys import api_key_authenticate
from members.tokens import access_token_authenticate, access_token_create
from rewards.models import Reward, Voucher


@pytest.mark.django_db
def test_seed_demo_builds_a_consistent_program_with_history(capsys):
    call_command("seed_demo", "--members", "25", "--seed", "7")

    program = Program.objects.get(slug="demo")
    out = capsys.readouterr().out
    key = next(line.split()[-1] for line in out.splitlines() if "POS API key:" in line)
    assert program.members.count() == 25
    assert Purchase.objects.filter(program=program).count() > 25
    assert (Tier.objects.filter(program=program).count(), EarningRule.objects.filter(program=program).count()) == (3, 9)
    assert Reward.objects.filter(program=program).count() == 5
    assert Voucher.objects.filter(program=program, points_cost__gt=0).exists()  # redeemed through the service
    assert NpsAnswer.objects.filter(program=program).exists()
    assert api_key_authenticate(key).program == program
    assert ledger_audit(program=program) == []
    assert "login admin / admin" in out
    app_line = next(line for line in out.splitlines() if "Member app:" in line)
    email, password = app_line.split("email ")[1].split(", password ")
    member, token = member_app_login(program_slug="demo", email=email, password=password)  # the printed login works
    assert member.program == program and token

    admin_token = access_token_create(user=get_user_model().objects.get(username="admin"))

    call_command("seed_demo", "--members", "25")  # a second run does not seed again, but gives a new key
    assert program.members.count() == 25 and ApiKey.objects.filter(program=program).count() == 2
    # and keeps the admin's and the member app's sign-ins: the passwords did not change
    assert access_token_authenticate(admin_token) is not None
    assert access_token_authenticate(token) is not None

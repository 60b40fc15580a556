"""The attainability report in the admin: how close a program's members are to its rewards, with a what-if.

Reached from the rewards list ("Attainability report"); the page posts to itself and writes nothing.
"""

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from members.access import access_program_chosen
from rewards.attainability import WhatIf, program_report, rewards_on_offer
from rewards.models import Reward


class WhatIfForm(forms.Form):
    base_rate_multiplier = forms.DecimalField(
        required=False,
        min_value=Decimal("0.001"),
        max_value=Decimal(100),
        decimal_places=3,
        label="Base rate ×",
        help_text="1.5 means members earn half as much again from the base rate and multipliers; bonuses stay.",
    )

    def __init__(self, *args: Any, rewards: list[Reward], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.rewards = rewards
        for reward in rewards:
            self.fields[f"cost_{reward.pk}"] = forms.IntegerField(
                required=False, min_value=1, max_value=2**31 - 1, label=f"Proposed cost of {reward.name}"
            )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what super().clean() returned (typed: the stubs allow None)
        if data.get("base_rate_multiplier") is None and not self.reward_costs():
            raise forms.ValidationError("Enter a base rate multiplier, a proposed cost, or both.")
        return data

    def reward_costs(self) -> dict[int, int]:
        data = getattr(self, "cleaned_data", {})
        return {reward.pk: data[f"cost_{reward.pk}"] for reward in self.rewards if data.get(f"cost_{reward.pk}")}

    def what_if(self) -> WhatIf:
        return WhatIf(
            base_rate_multiplier=self.cleaned_data.get("base_rate_multiplier"), reward_costs=self.reward_costs()
        )


def attainability_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    programs, program = access_program_chosen(request.user, request.GET.get("program"))
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": "Reward attainability",
        "programs": programs,
        "program": program,
    }
    if program is not None:
        now = timezone.now()
        rewards = list(rewards_on_offer(program_id=program.pk, now=now))
        form = WhatIfForm(request.POST if request.method == "POST" else None, rewards=rewards)
        what_if = form.what_if() if form.is_bound and form.is_valid() else None
        report = program_report(program=program, what_if=what_if, now=now)
        proposed = {row["id"]: row for row in (report["proposed"] or {}).get("rewards", [])}
        context |= {
            "form": form,
            "report": report,
            "rows": [
                {"current": row, "proposed": proposed.get(row["id"]), "field": form[f"cost_{row['id']}"]}
                for row in report["current"]["rewards"]
            ],
        }
    return TemplateResponse(request, "admin/rewards/attainability.html", context)

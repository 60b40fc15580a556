"""Helpers of the admin tests."""

from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.urls import reverse


def url(name, *args):
    return reverse(f"admin:{name}", args=args)


def grant(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)  # permissions are cached on the instance


def messages_of(response):
    """The messages a response left for the next page; reading them clears them, as showing them would."""
    found = [str(message) for message in get_messages(response.wsgi_request)]
    response.client.cookies.pop("messages", None)
    return found


def shown(response):
    """The primary keys on a changelist page."""
    return sorted(obj.pk for obj in response.context["cl"].result_list)


def rule_form(program, **fields):
    """What the add form posts for a complete rule."""
    data = {
        "program": program.pk,
        "name": "Weekend bonus",
        "kind": "bonus",
        "is_active": "on",
        "priority": "300",
        "event": "",
        "skus": "",
        "categories": "",
        "excluded_skus": "",
        "excluded_categories": "",
        "channels": "",
        "stores": "",
        "weekdays": "",
        "rate": "0",
        "multiplier": "1",
        "points": "50",
        "_save": "1",
    }
    return {**data, **fields}

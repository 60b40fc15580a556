"""The program manager's admin: programs, members and API keys.

- Scoping: a superuser sees everything; any other staff user sees only the
  programs `members.access.managed_programs` gives them and the rows of those
  programs, and can pick only those programs in forms.
- Writes go through `members.services`; actions ask for confirmation first.
  The buttons on a change page post the same actions for that one object, so
  each action has one implementation and one permission check.
- The points part of the member page (balances, ledger, adjustments) lives in
  `loyalty.admin`, which extends `MemberAdmin`: imports point one way
  (members <- loyalty).

One module per subject: `base` (scoping, action buttons and confirmation pages,
list filters and helpers), `programs`, `members` (the member admin and its filters), `api_keys`,
`users` (Django's users and groups, for superusers only: they span programs).
"""

from members.admin.api_keys import ApiKeyAdmin, ApiKeyStateFilter
from members.admin.base import (
    ACTION_PAGE_SHOWN,
    ManagedProgramFilter,
    ObjectActionsAdmin,
    OfferedIdFilter,
    ProgramScopedAdmin,
    RangeListFilter,
    adopt,
    done_with,
    member_search_q,
    plural,
)
from members.admin.members import (
    IDENTIFIERS,
    PROFILE_FIELDS,
    MemberAdmin,
    MemberForm,
    MemberStatusFilter,
)
from members.admin.programs import (
    ANALYTICS_FIELDS,
    PROGRAM_HELP,
    TIER_FIELDS,
    ProgramAdmin,
    ProgramForm,
    timezone_choices,
)
from members.admin.users import SuperuserGroupAdmin, SuperuserUserAdmin

__all__ = [
    "ACTION_PAGE_SHOWN",
    "ANALYTICS_FIELDS",
    "IDENTIFIERS",
    "PROFILE_FIELDS",
    "PROGRAM_HELP",
    "TIER_FIELDS",
    "ApiKeyAdmin",
    "ApiKeyStateFilter",
    "ManagedProgramFilter",
    "OfferedIdFilter",
    "MemberAdmin",
    "MemberForm",
    "MemberStatusFilter",
    "ObjectActionsAdmin",
    "ProgramAdmin",
    "ProgramForm",
    "ProgramScopedAdmin",
    "RangeListFilter",
    "SuperuserGroupAdmin",
    "SuperuserUserAdmin",
    "adopt",
    "done_with",
    "member_search_q",
    "plural",
    "timezone_choices",
]

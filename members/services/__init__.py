"""Every write on programs, members and API keys, one module per subject: `members` (enrolment, details,
status), `gdpr` (erasure), `api_keys`, `programs`, `idempotency` (Idempotency-Key records of the API).
The identifiers' normalisers live in `members.identifiers` (pure functions)."""

from members.identifiers import (
    CARD_DIGITS,
    CODE_ALPHABET,
    format_card,
    normalize_card,
    normalize_email,
    normalize_phone,
    random_code,
)
from members.services.api_keys import (
    API_KEY_PREFIX,
    api_key_authenticate,
    api_key_create,
    api_key_revoke,
    api_key_update,
    api_keys_uncache,
)
from members.services.gdpr import member_erase
from members.services.idempotency import IdempotencyClaim, idempotency_keys_clean, idempotent_transaction
from members.services.members import (
    member_close,
    member_create,
    member_identifiers_check,
    member_reactivate,
    member_set_status,
    member_suspend,
    member_update,
    members_create_bulk,
)
from members.services.programs import program_create, program_settings_save

__all__ = [
    "API_KEY_PREFIX",
    "CARD_DIGITS",
    "CODE_ALPHABET",
    "IdempotencyClaim",
    "api_key_authenticate",
    "api_key_create",
    "api_key_revoke",
    "api_key_update",
    "api_keys_uncache",
    "format_card",
    "idempotency_keys_clean",
    "idempotent_transaction",
    "member_close",
    "member_create",
    "member_erase",
    "member_identifiers_check",
    "member_reactivate",
    "member_set_status",
    "member_suspend",
    "member_update",
    "members_create_bulk",
    "normalize_card",
    "normalize_email",
    "normalize_phone",
    "program_create",
    "program_settings_save",
    "random_code",
]

"""Member identifiers as stored and shown: card numbers, emails and phone numbers normalised, cards grouped for
reading, random codes without look-alike characters. Pure functions; `members.services.members` makes them unique."""

import secrets

# No look-alike characters (0/O, 1/I/L, 2/Z, 5/S, 8/B).
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
CARD_DIGITS = 12


def normalize_card(value: str) -> str:
    return "".join(ch for ch in value if ch.isalnum()).upper()


def normalize_email(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    return value or None


def normalize_phone(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    digits = "".join(ch for ch in value if ch.isdigit())
    return f"+{digits}" if value.startswith("+") else digits


def format_card(card: str) -> str:
    """Cards are stored bare and shown in groups of four: 4000-1234-5678."""
    return "-".join(card[i : i + 4] for i in range(0, len(card), 4))


def random_code(length: int) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))

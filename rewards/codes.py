"""Voucher codes: random, unambiguous, easy to read out at a till.

Twelve characters of Crockford's base32 alphabet (no I, L, O or U, so no
look-alikes) carry 12 × 5 = 60 bits from `secrets`. Codes are stored
normalized (no dashes) and shown in groups of four: XXXX-XXXX-XXXX.
"""

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 12
GROUP = 4
# What people type for the letters the alphabet leaves out.
_LOOK_ALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = str.maketrans("", "", " -\t")


def code_generate() -> str:
    """A new normalized code (12 characters, 60 bits)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str:
    """The stored form of what a person typed: upper case, no spaces or dashes, O→0, I/L→1."""
    return str(text).upper().translate(_SEPARATORS).translate(_LOOK_ALIKES)


def format_code(code: str) -> str:
    """A normalized code grouped for display: XXXX-XXXX-XXXX."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def codes_generate(count: int) -> list[str]:
    """`count` new codes, distinct among themselves (a repeat within one batch is drawn again)."""
    # One 60-bit draw per code, cut into twelve 5-bit characters: same distribution as
    # `code_generate`, about ten times faster for a campaign's hundred thousand codes.
    codes: set[str] = set()
    while len(codes) < count:
        bits = secrets.randbits(5 * CODE_LENGTH)
        codes.add("".join(ALPHABET[(bits >> shift) & 31] for shift in range(0, 5 * CODE_LENGTH, 5)))
    return list(codes)

import math
import re

from rewards.codes import ALPHABET, CODE_LENGTH, code_generate, format_code, normalize_code


def test_codes_are_twelve_characters_of_the_unambiguous_alphabet():
    codes = {code_generate() for _ in range(2000)}

    assert len(codes) == 2000
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{12}", code) for code in codes)
    assert not set("ILOU") & set("".join(codes))


def test_the_alphabet_is_crockford_base32_so_a_code_carries_sixty_bits():
    assert ALPHABET == "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    assert len(set(ALPHABET)) == 32
    assert CODE_LENGTH * math.log2(len(ALPHABET)) >= 60


def test_every_symbol_is_used_at_every_position():
    codes = [code_generate() for _ in range(3000)]

    for position in range(CODE_LENGTH):
        assert {code[position] for code in codes} == set(ALPHABET)


def test_codes_are_shown_in_groups_of_four():
    assert format_code("ABCD2345WXYZ") == "ABCD-2345-WXYZ"


def test_normalize_reads_what_people_type():
    assert normalize_code(" abcd-2345 wxyz ") == "ABCD2345WXYZ"
    assert normalize_code("o0il-L1OO") == "00111100"
    assert normalize_code(format_code("K7Q9M2ZT0VX4")) == "K7Q9M2ZT0VX4"

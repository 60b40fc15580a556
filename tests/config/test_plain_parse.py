"""`plain_parse` against the serializers it stands in for: on any body, generated valid or broken, it either gives
up (None, and the serializer answers) or gives exactly the serializer's validated data."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from config.api.input import plain_parse
from loyalty.apis.purchase_serializers import PosEventInput, PosPurchaseInput, PosReturnInput


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """`good` four times in five."""
    return st.one_of(good, good, good, good, bad)


# Mostly valid values (the plain path must be taken often), with the edge cases and broken ones mixed in.
good_texts = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30)
texts = st.one_of(
    good_texts,
    good_texts,
    st.sampled_from(["P-1", "", " padded ", "a" * 64, "a" * 65, "a" * 100, "a" * 101, "x\x00y", "Ž", "4000 1234"]),
)
good_numbers = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False).map(str)
numbers = st.one_of(
    good_numbers,
    good_numbers,
    st.decimals(min_value=0, max_value=10**13, places=3, allow_nan=False).map(str),
    st.sampled_from(["1e3", "12.345", "-1", " 5.00 ", "NaN", "1,00", "0", "0.001", "999999999999.99", "1" * 30]),
    st.integers(min_value=-5, max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
)
times = st.sampled_from(
    ["2026-12-07T10:00:00+01:00", "2026-12-07T10:00:00Z", "2026-12-07T10:00:00.123456-05:30", " 2026-12-07T10:00Z ",
     "2026-12-07T10:00:00", "2026-13-07T10:00:00Z", "yesterday", 5]
)  # fmt: skip
values = st.one_of(texts, numbers, times, st.none(), st.booleans(), st.lists(st.integers(), max_size=2))
members = st.one_of(
    st.fixed_dictionaries({"card": texts}),
    st.fixed_dictionaries({"id": st.integers(min_value=1, max_value=10**12)}),
    st.fixed_dictionaries({"id": st.one_of(st.integers(min_value=-1, max_value=10**20), texts)}),
    st.fixed_dictionaries({"email": texts, "phone": texts}),
    st.dictionaries(st.sampled_from(["id", "card", "external_id", "email", "phone", "cardx"]), values, max_size=2),
    values,
)
line_fields = {
    "sku": mostly(good_texts, texts),
    "quantity": mostly(good_numbers.filter(lambda n: Decimal(n) > 0), numbers),
    "unit_price": mostly(good_numbers, numbers),
    "amount": mostly(good_numbers, numbers),
}
lines = st.fixed_dictionaries(line_fields, optional={"category": texts})
odd_lines = st.fixed_dictionaries(line_fields, optional={"skux": values})  # an unknown key


good_members = st.one_of(
    st.fixed_dictionaries({"card": good_texts.filter(lambda t: len(t.strip()) <= 32 and t.strip())}),
    st.fixed_dictionaries({"id": st.integers(min_value=1, max_value=10**12)}),
)
purchases = st.fixed_dictionaries(
    {
        "external_id": mostly(good_texts, texts),
        "member": mostly(good_members, members),
        "occurred_at": mostly(st.sampled_from(["2026-12-07T10:00:00+01:00", "2026-12-07T10:00:00.5Z"]), times),
        "currency": st.sampled_from(["CZK", "CZK", "czk", "EU", 5]),
        "total": mostly(good_numbers, numbers),
    },
    optional={
        "store": texts,
        "channel": st.sampled_from(["pos", "eshop", "app", "fax", None]),
        "lines": mostly(st.lists(lines, max_size=3), st.one_of(st.lists(odd_lines, max_size=2), values)),
    },
)
returns = st.fixed_dictionaries(
    {"external_id": mostly(good_texts, texts), "purchase_external_id": mostly(good_texts, texts)},
    optional={
        "amount": mostly(good_numbers.filter(lambda n: Decimal(n) > 0), numbers),
        "lines": st.lists(st.fixed_dictionaries({"sku": texts, "amount": numbers}, optional={"quantity": numbers})),
        "occurred_at": times,
    },
)
events = st.fixed_dictionaries(
    {"member": members, "event": st.sampled_from(["app_review", "Bad Name", ""]), "external_id": texts},
    optional={"occurred_at": times},
)


def _same(serializer_class, body) -> bool:
    """True when plain_parse took the body (so the test can tell it is not always giving up)."""
    plain = plain_parse(serializer_class, body)
    serializer = serializer_class(data=body)
    valid = serializer.is_valid()
    if plain is None:
        return False
    assert valid, serializer.errors
    assert plain == serializer.validated_data
    return True


@settings(max_examples=400)
@given(body=st.one_of(purchases, purchases, st.builds(lambda body, odd: {**body, "storeid": odd}, purchases, values)))
def test_a_purchase_body_parses_as_the_serializer_parses_it(body):
    _same(PosPurchaseInput, body)


@settings(max_examples=200)
@given(body=returns)
def test_a_return_body_parses_as_the_serializer_parses_it(body):
    _same(PosReturnInput, body)


@settings(max_examples=200)
@given(body=events)
def test_an_event_body_parses_as_the_serializer_parses_it(body):
    _same(PosEventInput, body)


def test_the_usual_purchase_takes_the_plain_path():
    body = {
        "external_id": "R-1001",
        "member": {"card": "4000 1234 5678"},
        "occurred_at": "2026-12-07T10:00:00+01:00",
        "currency": "czk",
        "total": "1234.50",
        "lines": [
            {"sku": "BK-1", "category": "books", "quantity": "2", "unit_price": "500.00", "amount": "1000.00"},
            {"sku": "FD-7", "quantity": 1, "unit_price": "234.5", "amount": "234.50"},
        ],
    }
    assert _same(PosPurchaseInput, body)
    data = PosPurchaseInput.to_input(plain_parse(PosPurchaseInput, body))
    assert (data.currency, data.total, data.store, data.channel) == ("CZK", Decimal("1234.50"), "", "pos")
    assert [line.category for line in data.lines] == ["books", ""]


def test_an_unknown_key_or_a_second_member_field_is_left_to_the_serializer():
    body = {"external_id": "R-1", "member": {"card": "1"}, "occurred_at": "2026-12-07T10:00:00Z", "currency": "CZK",
            "total": "1.00"}  # fmt: skip
    assert plain_parse(PosPurchaseInput, body) is not None
    assert plain_parse(PosPurchaseInput, {**body, "storeid": "X"}) is None
    assert plain_parse(PosPurchaseInput, {**body, "member": {"card": "1", "email": "a@b.cz"}}) is None

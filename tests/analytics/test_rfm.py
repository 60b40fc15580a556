"""RFM quintile scores, the default grid and saving a program's own grid (`analytics.rfm`)."""

from decimal import Decimal

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from analytics.models import RfmSegment
from analytics.rfm import (
    DEFAULT_GRID,
    SegmentSpec,
    grid_problems,
    grid_table,
    quintile_scores,
    rfm_grid,
    segments_of,
)
from analytics.services.rfm import rfm_grid_save
from tests.factories import ProgramFactory, StaffFactory

CELLS = [(r, halves) for r in range(1, 6) for halves in range(2, 11)]  # R x (F + M)


def spec(name, r_min, r_max, fm_min, fm_max, description=""):
    return SegmentSpec(name, r_min, r_max, Decimal(str(fm_min)), Decimal(str(fm_max)), description)


EVERYONE = spec("Everyone", 1, 5, 1, 5)

# --- Scores ---------------------------------------------------------------------------------------


def test_distinct_values_get_one_score_each_per_fifth():
    assert quintile_scores([50, 10, 40, 20, 30]).tolist() == [5, 1, 4, 2, 3]
    # n = 10: two values per score
    assert quintile_scores(range(10)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_ties_share_the_score_of_their_lowest_rank():
    values = [1, 1, 2, 3, 3, 3, 4, 5, 5, 10]
    # ascending ranks (lowest of ties): 1 1 3 4 4 4 7 8 8 10 -> 1 + floor(5 (rank - 1) / 10)
    assert quintile_scores(values).tolist() == [1, 1, 2, 2, 2, 2, 4, 4, 4, 5]
    # descending (recency: fewest days -> 5): ranks 9 9 8 5 5 5 4 2 2 1
    assert quintile_scores(values, descending=True).tolist() == [5, 5, 4, 3, 3, 3, 2, 1, 1, 1]


def test_edge_populations():
    assert quintile_scores([]).tolist() == []
    assert quintile_scores([7]).tolist() == [1]
    assert quintile_scores([7], descending=True).tolist() == [1]
    assert quintile_scores([3, 3, 3]).tolist() == [1, 1, 1]
    assert quintile_scores(np.array([2, 1], dtype=np.int64)).tolist() == [3, 1]


# --- The default grid -------------------------------------------------------------------------------


def test_the_default_grid_covers_every_cell_and_is_valid():
    assert grid_problems(DEFAULT_GRID) == []
    for r, halves in CELLS:
        assert any(segment.contains(r, halves) for segment in DEFAULT_GRID), (r, halves)
    assert all(segment.description for segment in DEFAULT_GRID)


def test_the_default_grid_names_cells_in_priority_order():
    table = grid_table(DEFAULT_GRID)
    # table[R - 1][F + M - 2], FM from 1.0 to 5.0 in steps of 0.5
    assert table.tolist() == [
        ["Lost"] * 4 + ["At Risk"] * 2 + ["Can't Lose Them"] * 3,  # R1
        ["Hibernating"] * 4 + ["At Risk"] * 5,  # R2
        ["About to Sleep"] * 2 + ["Need Attention"] * 2 + ["Loyal"] * 5,  # R3
        ["Promising"] * 2 + ["Potential Loyalist"] * 2 + ["Loyal"] * 2 + ["Champions"] * 3,  # R4
        ["New"] * 2 + ["Potential Loyalist"] * 2 + ["Loyal"] * 2 + ["Champions"] * 3,  # R5
    ]
    names = [segment.name for segment in DEFAULT_GRID]
    assert names == [
        "Champions",
        "Loyal",
        "Potential Loyalist",
        "New",
        "Promising",
        "Need Attention",
        "About to Sleep",
        "Can't Lose Them",
        "At Risk",
        "Hibernating",
        "Lost",
    ]


def test_segments_of_members_from_their_scores():
    r, f, m = [5, 4, 1, 1, 3], [5, 4, 5, 1, 2], [4, 4, 3, 2, 2]
    assert segments_of(DEFAULT_GRID, r, f, m).tolist() == ["Champions", "Champions", "Can't Lose Them", "Lost"] + [
        "Need Attention"
    ]


# --- A program's grid --------------------------------------------------------------------------------


@pytest.fixture
def shop(db):
    return ProgramFactory()


def test_a_program_without_rows_uses_the_default_grid(shop):
    assert rfm_grid(shop) == DEFAULT_GRID


def test_saving_replaces_the_programs_grid_in_priority_order(shop):
    other = ProgramFactory()
    rfm_grid_save(program=other, segments=[EVERYONE])
    rfm_grid_save(program=shop, segments=[spec("Old", 1, 5, 1, 5)])

    saved = rfm_grid_save(
        program=shop, segments=[spec(" Best ", 5, 5, 4.5, 5, " Top cell. "), spec("Rest", 1, 5, 1, 5, "Others.")]
    )

    assert [(row.priority, row.name) for row in saved] == [(1, "Best"), (2, "Rest")]
    assert rfm_grid(shop) == (spec("Best", 5, 5, 4.5, 5, "Top cell."), spec("Rest", 1, 5, 1, 5, "Others."))
    assert list(RfmSegment.objects.filter(program=other).values_list("name", flat=True)) == ["Everyone"]


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ([], "A grid needs at least one segment."),
        ([spec("", 1, 5, 1, 5)], "Segment 1 (no name): a name is required."),
        ([EVERYONE, spec("everyone", 1, 1, 1, 1)], "Segment 2 (everyone): another segment has this name."),
        ([spec("X" * 65, 1, 5, 1, 5)], "longer than 64 characters"),
        ([spec("Upside down", 3, 2, 1, 5), EVERYONE], "R must run from r_min to r_max within 1–5 (got 3–2)."),
        ([spec("Zero", 0, 5, 1, 5)], "R must run from r_min to r_max within 1–5 (got 0–5)."),
        ([spec("Six", 1, 6, 1, 5)], "(got 1–6)"),
        ([spec("Low", 1, 5, 0.5, 5)], "FM must run from fm_min to fm_max within 1.0–5.0 (got 0.5–5)."),
        ([spec("Wide", 1, 5, 4, 3), EVERYONE], "(got 4–3)"),
        ([spec("Thirds", 1, 5, 1, 4.3), EVERYONE], "FM bounds go in steps of 0.5"),
        (
            [spec("Top", 1, 5, 1.5, 5)],
            "No segment covers R1 × FM 1.0, R2 × FM 1.0, R3 × FM 1.0, R4 × FM 1.0, R5 × FM 1.0; "
            "every R 1–5 × FM 1.0–5.0 cell needs one.",
        ),
        ([spec("Most", 2, 5, 1, 5), spec("Part of R1", 1, 1, 1, 4.5)], "No segment covers R1 × FM 5.0;"),
    ],
)
def test_an_invalid_grid_is_refused_and_nothing_changes(shop, segments, message):
    rfm_grid_save(program=shop, segments=[EVERYONE])

    with pytest.raises(ValidationError) as caught:
        rfm_grid_save(program=shop, segments=segments)

    problems = caught.value.message_dict["segments"]
    assert any(message in problem for problem in problems), problems
    assert rfm_grid(shop) == (EVERYONE,)


def test_overlapping_segments_are_valid_the_first_wins(shop):
    grid = [spec("Recent", 4, 5, 1, 5), spec("Rich", 1, 5, 4, 5), EVERYONE]
    rfm_grid_save(program=shop, segments=grid)

    assert segments_of(rfm_grid(shop), [5, 1, 1], [5, 5, 1], [5, 5, 1]).tolist() == ["Recent", "Rich", "Everyone"]


# --- The grid in the admin ----------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, shop):
    user = StaffFactory(
        permissions=["view_rfmsegment", "add_rfmsegment", "change_rfmsegment", "delete_rfmsegment"], programs=[shop]
    )
    client.force_login(user)
    return client


def form(program, **fields):
    data = {"program": program.pk, "name": "VIP", "priority": "0", "r_min": "5", "r_max": "5"}
    return {**data, "fm_min": "5.0", "fm_max": "5.0", "description": "", "_save": "1", **fields}


def names(program):
    return [segment.name for segment in rfm_grid(program)]


def test_the_admin_lists_only_the_managed_programs_segments(admin_client, shop):
    rfm_grid_save(program=shop, segments=[EVERYONE])
    rfm_grid_save(program=ProgramFactory(), segments=[spec("Elsewhere", 1, 5, 1, 5)])

    response = admin_client.get(reverse("admin:analytics_rfmsegment_changelist"))

    assert [row.name for row in response.context["cl"].result_list] == ["Everyone"]
    assert "delete_selected" not in response.context["cl"].model_admin.get_actions(response.wsgi_request)


def test_the_first_segment_added_in_the_admin_copies_the_default_grid(admin_client, shop):
    response = admin_client.post(reverse("admin:analytics_rfmsegment_add"), form(shop))

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert names(shop) == ["VIP", *(segment.name for segment in DEFAULT_GRID)]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"name": "Lost"}, "Segment 12 (Lost): another segment has this name."),
        ({"fm_min": "4.2"}, "FM bounds go in steps of 0.5"),
    ],
)
def test_the_admin_refuses_a_segment_that_breaks_the_grid(admin_client, shop, fields, error):
    response = admin_client.post(reverse("admin:analytics_rfmsegment_add"), form(shop, **fields))

    assert response.status_code == 200
    assert any(error in message for message in response.context["adminform"].form.non_field_errors())
    assert not RfmSegment.objects.exists()


def test_an_edit_that_uncovers_cells_is_refused(admin_client, shop):
    rfm_grid_save(program=shop, segments=DEFAULT_GRID)
    lost = RfmSegment.objects.get(program=shop, name="Lost")
    url = reverse("admin:analytics_rfmsegment_change", args=[lost.pk])

    refused = admin_client.post(url, form(shop, name="Lost", priority="11", r_min="1", r_max="1", fm_min="2.0"))
    accepted = admin_client.post(url, form(shop, name="Gone", priority="11", r_min="1", r_max="2", fm_min="1.0"))

    errors = refused.context["adminform"].form.non_field_errors()
    assert errors == ["No segment covers R1 × FM 1.0, R1 × FM 1.5; every R 1–5 × FM 1.0–5.0 cell needs one."]
    assert accepted.status_code == 302
    assert names(shop)[-1] == "Gone"
    assert RfmSegment.objects.get(pk=lost.pk).fm_max == Decimal("5.0")


def test_a_segment_is_deleted_only_when_the_rest_covers_every_cell(admin_client, shop):
    rfm_grid_save(program=shop, segments=[spec("Recent", 4, 5, 1, 5), EVERYONE])
    recent, everyone = RfmSegment.objects.filter(program=shop).order_by("priority")
    other = rfm_grid_save(program=ProgramFactory(), segments=[EVERYONE])[0]

    assert admin_client.get(reverse("admin:analytics_rfmsegment_delete", args=[everyone.pk])).status_code == 403
    assert (
        admin_client.post(reverse("admin:analytics_rfmsegment_delete", args=[recent.pk]), {"post": "yes"}).status_code
        == 302
    )
    assert names(shop) == ["Everyone"]
    # The last segment may go: the program is back on the default grid.
    admin_client.post(reverse("admin:analytics_rfmsegment_delete", args=[everyone.pk]), {"post": "yes"})
    assert rfm_grid(shop) == DEFAULT_GRID
    assert admin_client.get(reverse("admin:analytics_rfmsegment_change", args=[other.pk])).status_code == 302

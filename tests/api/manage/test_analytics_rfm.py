"""Manager API: RFM segments and matrix, the RFM grid, the analytics refresh, and the member list's analytics
filters (/api/manage/v1/analytics/..., /api/manage/v1/members/)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from analytics.members import member_analytics_refresh
from analytics.models import MemberAnalytics, NpsSource, RfmSegment
from analytics.services.refresh import analytics_refresh_queued
from tests.analytics.population import AS_OF, population
from tests.api.utils import ANALYST, MANAGE, MANAGE_MEMBERS_URL, REFRESH_URL, assert_problem
from tests.clients import staff_client_for
from tests.factories import MemberFactory, NpsAnswerFactory, ProgramFactory

RFM_URL = f"{MANAGE}/analytics/rfm/"
GRID_URL = f"{MANAGE}/analytics/rfm/segments/"


@pytest.fixture
def shop(db):
    return ProgramFactory(timezone="Europe/Prague", margin_rate=Decimal("0.3"))


@pytest.fixture
def analyst(shop):
    return staff_client_for(shop, ANALYST)


@pytest.fixture
def reader(shop):
    """May read analytics, not change the grid or refresh."""
    return staff_client_for(shop, ["view_memberanalytics", "view_member"])


def segment(name, r_min, r_max, fm_min, fm_max, description=""):
    return {
        "name": name,
        "r_min": r_min,
        "r_max": r_max,
        "fm_min": fm_min,
        "fm_max": fm_max,
        "description": description,
    }


def grid_rows(program):
    return list(RfmSegment.objects.filter(program=program).values_list("priority", "name", "r_min", "fm_min"))


# --- RFM summary -----------------------------------------------------------------------------------


def test_rfm_summary_counts_members_per_segment_and_cell(shop, analyst):
    population(shop)
    member_analytics_refresh(program=shop, as_of=AS_OF)

    response = analyst.get(RFM_URL, {"program": shop.slug})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["program"], body["as_of"], body["members"], body["without_purchase"]) == (
        shop.slug,
        "2025-06-30T12:00:00Z",
        8,
        3,
    )
    counts = {item["name"]: (item["members"], item["share"]) for item in body["segments"]}
    assert counts == {
        "Champions": (2, 0.4),  # ana, hana
        "Loyal": (0, 0.0),
        "Potential Loyalist": (0, 0.0),
        "New": (0, 0.0),
        "Promising": (0, 0.0),
        "Need Attention": (1, 0.2),  # cid
        "About to Sleep": (0, 0.0),
        "Can't Lose Them": (0, 0.0),
        "At Risk": (0, 0.0),
        "Hibernating": (1, 0.2),  # ben
        "Lost": (1, 0.2),  # dan
    }
    assert body["segments"][0] == {
        "name": "Champions",
        "description": body["segments"][0]["description"],
        "r_min": 4,
        "r_max": 5,
        "fm_min": "4.0",
        "fm_max": "5.0",
        "in_grid": True,
        "members": 2,
        "share": 0.4,
    }
    # matrix[R - 1][floor(FM) - 1]: ana R5 FM 4.5, hana R4 FM 4.0, cid R3 FM 2.0, ben R2 FM 2.0, dan R1 FM 1.5
    assert body["matrix"] == [
        [1, 0, 0, 0, 0],
        [0, 1, 0, 0, 0],
        [0, 1, 0, 0, 0],
        [0, 0, 0, 1, 0],
        [0, 0, 0, 1, 0],
    ]


def test_rfm_summary_before_any_refresh(shop, analyst):
    MemberFactory(program=shop)

    body = analyst.get(RFM_URL, {"program": shop.slug}).json()

    assert (body["as_of"], body["members"], body["without_purchase"]) == (None, 0, 0)
    assert {item["members"] for item in body["segments"]} == {0}
    assert body["matrix"] == [[0] * 5] * 5


def test_segments_of_an_earlier_grid_are_listed_until_the_next_refresh(shop, analyst):
    population(shop)
    member_analytics_refresh(program=shop, as_of=AS_OF)
    analyst.put(GRID_URL, {"program": shop.slug, "segments": [segment("All", 1, 5, 1, 5)]}, format="json")

    body = analyst.get(RFM_URL, {"program": shop.slug}).json()

    assert [(s["name"], s["in_grid"], s["members"], s["r_min"]) for s in body["segments"]] == [
        ("All", True, 0, 1),
        ("Champions", False, 2, None),
        ("Hibernating", False, 1, None),
        ("Lost", False, 1, None),
        ("Need Attention", False, 1, None),
    ]


# --- The grid ---------------------------------------------------------------------------------------


def test_the_default_grid_is_shown_until_the_program_saves_its_own(shop, analyst):
    body = analyst.get(GRID_URL, {"program": shop.slug}).json()

    assert body["is_default"] is True
    assert [(s["priority"], s["name"]) for s in body["segments"][:2]] == [(1, "Champions"), (2, "Loyal")]
    assert len(body["segments"]) == 11
    assert body["segments"][-1] | {"description": ""} == {
        "priority": 11,
        "name": "Lost",
        "r_min": 1,
        "r_max": 1,
        "fm_min": "1.0",
        "fm_max": "5.0",
        "description": "",
    }


def test_a_manager_replaces_the_grid(shop, analyst):
    grid = [segment("Recent", 4, 5, "1.0", "5.0", "Bought lately."), segment("Others", 1, 5, 1, "5")]

    response = analyst.put(GRID_URL, {"program": shop.slug, "segments": grid}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "program": shop.slug,
        "is_default": False,
        "segments": [
            {"priority": 1, **segment("Recent", 4, 5, "1.0", "5.0", "Bought lately.")},
            {"priority": 2, **segment("Others", 1, 5, "1.0", "5.0")},
        ],
    }
    assert grid_rows(shop) == [(1, "Recent", 4, Decimal("1.0")), (2, "Others", 1, Decimal("1.0"))]
    assert analyst.get(GRID_URL, {"program": shop.slug}).json()["is_default"] is False


@pytest.mark.parametrize(
    ("segments", "field"),
    [
        ([segment("Top", 2, 5, 1, 5)], "segments"),  # R1 not covered
        ([segment("All", 1, 5, 1, 5), segment("all", 1, 5, 1, 5)], "segments"),  # repeated name
        ([segment("All", 1, 5, 1, "4.3")], "segments"),  # not a step of 0.5 (and R1-5 x FM 4.5-5 uncovered)
        ([segment("All", 0, 5, 1, 5)], "segments"),  # r_min below 1 (serializer)
        ([segment("All", 1, 5, "1.25", 5)], "segments"),  # two decimals
        ([], "segments"),
    ],
)
def test_a_bad_grid_is_refused_and_nothing_is_saved(shop, analyst, segments, field):
    analyst.put(GRID_URL, {"program": shop.slug, "segments": [segment("All", 1, 5, 1, 5)]}, format="json")

    response = analyst.put(GRID_URL, {"program": shop.slug, "segments": segments}, format="json")

    body = assert_problem(response, 400, "validation_error")
    assert field in body["errors"]
    assert grid_rows(shop) == [(1, "All", 1, Decimal("1.0"))]


def test_an_uncovered_cell_is_named_in_the_error(shop, analyst):
    response = analyst.put(
        GRID_URL, {"program": shop.slug, "segments": [segment("Most", 1, 5, "1.5", 5)]}, format="json"
    )

    body = assert_problem(response, 400, "validation_error")
    assert body["errors"]["segments"] == [
        "No segment covers R1 × FM 1.0, R2 × FM 1.0, R3 × FM 1.0, R4 × FM 1.0, R5 × FM 1.0; "
        "every R 1–5 × FM 1.0–5.0 cell needs one."
    ]


# --- Refusals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("get", RFM_URL, None),
        ("get", GRID_URL, None),
        ("put", GRID_URL, {"segments": [segment("All", 1, 5, 1, 5)]}),
        ("get", REFRESH_URL, None),
        ("post", REFRESH_URL, {}),
    ],
)
def test_unknown_and_unmanaged_programs_answer_404(shop, analyst, method, url, data):
    other = ProgramFactory()
    for slug in ("no-such-program", other.slug):
        if data is None:
            response = analyst.get(url, {"program": slug})
        else:
            response = getattr(analyst, method)(url, {"program": slug, **data}, format="json")
        assert_problem(response, 404, "program_not_found")
    assert not RfmSegment.objects.exists()
    assert not MemberAnalytics.objects.exists()


def test_a_missing_program_is_a_validation_error(shop, analyst):
    body = assert_problem(analyst.get(RFM_URL), 400, "validation_error")
    assert "program" in body["errors"]


def test_reads_need_the_view_permission(shop):
    client = staff_client_for(shop, ["view_member", "change_rfmsegment"])

    for url in (RFM_URL, GRID_URL, REFRESH_URL):
        assert_problem(client.get(url, {"program": shop.slug}), 403, "permission_denied")


def test_grid_changes_and_refreshes_need_the_change_permission(shop, reader):
    population(shop)

    put = reader.put(GRID_URL, {"program": shop.slug, "segments": [segment("All", 1, 5, 1, 5)]}, format="json")
    post = reader.post(REFRESH_URL, {"program": shop.slug}, format="json")

    assert_problem(put, 403, "permission_denied")
    assert_problem(post, 403, "permission_denied")
    assert not RfmSegment.objects.exists()
    assert not MemberAnalytics.objects.exists()
    assert reader.get(GRID_URL, {"program": shop.slug}).status_code == 200


def test_anonymous_requests_answer_401(shop):
    assert_problem(APIClient().get(RFM_URL, {"program": shop.slug}), 401, "not_authenticated")


# --- Refresh ----------------------------------------------------------------------------------------


def test_a_refresh_runs_the_task_and_reports_its_progress(
    shop, analyst, django_capture_on_commit_callbacks, eager_tasks
):
    population(shop)
    assert analyst.get(REFRESH_URL, {"program": shop.slug}).json() == {
        "program": shop.slug,
        "state": "idle",
        "step": None,
        "steps": [],
    }

    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = analyst.post(REFRESH_URL, {"program": shop.slug}, format="json")

    # The answer is sent as the task is queued (after the request's transaction); tasks run eagerly in tests.
    assert len(queued) == 1
    assert response.status_code == 202, response.content
    assert (response.json()["state"], response.json()["steps"]) == ("queued", [])
    # As of now, gus's July purchase counts too: six members with a purchase.
    assert MemberAnalytics.objects.filter(program=shop).count() == 8
    assert MemberAnalytics.objects.filter(program=shop).exclude(segment="").count() == 6
    status = analyst.get(REFRESH_URL, {"program": shop.slug}).json()
    assert (status["state"], status["step"]) == ("done", None)
    assert [(step["name"], step["done"], step["total"]) for step in status["steps"]][0] == ("members", 8, 8)
    assert status["steps"][0]["started_at"] <= status["steps"][0]["finished_at"]
    assert status["results"]["members"] == {
        "as_of": status["as_of"],
        "members": 8,
        "purchasers": 6,
        "segment_changes": 6,
    }


def test_no_second_refresh_is_queued_while_one_is_pending(shop, analyst, django_capture_on_commit_callbacks):
    population(shop)
    analytics_refresh_queued(shop)

    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = analyst.post(REFRESH_URL, {"program": shop.slug}, format="json")

    assert queued == []

    assert response.status_code == 202
    assert response.json()["state"] == "queued"
    assert not MemberAnalytics.objects.exists()


# --- Member list filters -------------------------------------------------------------------------------


@pytest.fixture
def scored(shop):
    """The population refreshed, with CLV predictions and NPS answers set by hand."""
    members = population(shop)
    member_analytics_refresh(program=shop, as_of=AS_OF)
    predictions = {"ana": (0.9, "300.00"), "ben": (0.2, "20.00"), "cid": (0.5, "50.00"), "dan": (0.05, "0.00")}
    for name, (p_alive, clv) in predictions.items():
        MemberAnalytics.objects.filter(member=members[name]).update(p_alive=p_alive, clv_predicted=Decimal(clv))
    answers = {
        "ana": [(3, 1), (10, 5)],  # latest 10: promoter
        "ben": [(10, 1), (3, 5)],  # latest 3: detractor
        "cid": [(8, 2)],  # passive
        "dan": [(6, 2)],  # detractor (the highest detractor score)
        "hana": [(9, 2)],  # promoter (the lowest promoter score)
        "eva": [(7, 2)],  # passive (the lowest passive score)
    }
    for name, scores in answers.items():
        for score, day in scores:
            NpsAnswerFactory(
                program=shop,
                member=members[name],
                score=score,
                source=NpsSource.APP,
                answered_at=datetime(2025, 6, day, tzinfo=UTC),
            )
    return members


def listed(client, members, **params):
    response = client.get(MANAGE_MEMBERS_URL, params)
    assert response.status_code == 200, response.content
    names = {member.pk: name for name, member in members.items()}
    return {names[row["id"]] for row in response.json()["results"]}


def test_members_filtered_by_segment(shop, analyst, scored):
    assert listed(analyst, scored, segment="Champions") == {"ana", "hana"}
    assert listed(analyst, scored, segment="Lost") == {"dan"}
    assert listed(analyst, scored, segment="Loyal") == set()


def test_members_filtered_by_probability_alive(shop, analyst, scored):
    assert listed(analyst, scored, p_alive_min="0.5") == {"ana", "cid"}
    assert listed(analyst, scored, p_alive_max="0.2") == {"ben", "dan"}
    assert listed(analyst, scored, p_alive_min="0.2", p_alive_max="0.5") == {"ben", "cid"}
    assert listed(analyst, scored, p_alive_min="0.21", p_alive_max="0.49") == set()


def test_members_filtered_by_predicted_lifetime_value(shop, analyst, scored):
    assert listed(analyst, scored, clv_min="50") == {"ana", "cid"}
    assert listed(analyst, scored, clv_max="49.99") == {"ben", "dan"}
    assert listed(analyst, scored, clv_min="20", clv_max="50") == {"ben", "cid"}


def test_members_filtered_by_the_group_of_their_latest_nps_answer(shop, analyst, scored):
    assert listed(analyst, scored, nps="promoter") == {"ana", "hana"}
    assert listed(analyst, scored, nps="passive") == {"cid", "eva"}
    assert listed(analyst, scored, nps="detractor") == {"ben", "dan"}
    assert_problem(analyst.get(MANAGE_MEMBERS_URL, {"nps": "fan"}), 400, "validation_error")

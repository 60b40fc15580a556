def test_unknown_api_path_is_a_problem_document(client):
    response = client.get("/api/pos/v1/nothing-here/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


def test_unknown_page_outside_the_api_is_html(client):
    response = client.get("/nothing-here/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_unhandled_errors_under_the_api_answer_problem_json(rf):
    from django.db import OperationalError

    from config.api.problems import ProblemJsonMiddleware

    middleware = ProblemJsonMiddleware(lambda request: None)

    crashed = middleware.process_exception(rf.get("/api/pos/v1/members/1/"), RuntimeError("boom"))
    database_down = middleware.process_exception(rf.get("/api/pos/v1/members/1/"), OperationalError("gone"))
    elsewhere = middleware.process_exception(rf.get("/admin/"), RuntimeError("boom"))

    assert (crashed.status_code, crashed["Content-Type"]) == (500, "application/problem+json")
    assert b'"internal_error"' in crashed.content and b"boom" not in crashed.content
    assert (database_down.status_code, database_down["Retry-After"]) == (503, "2")
    assert b'"database_unavailable"' in database_down.content
    assert elsewhere is None

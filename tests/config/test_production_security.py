"""Production defaults: `check --deploy` is clean with the documented environment, HTTPS is enforced
(but not for health probes), and every page carries a Content-Security-Policy its own scripts obey."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from tests.factories import MemberFactory, SuperuserFactory

ROOT = Path(__file__).resolve().parents[2]

# The environment docs/operations.md gives a deployment ("Deploying"), with and without a proxy in front.
PRODUCTION_ENV = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "DATABASE_URL": "postgres://loyalty:secret@db.internal:5432/loyalty",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "ALLOWED_HOSTS": "loyalty.example.com",
}
UNSET = ("DEBUG", "LOYALTY_ALLOW_INSECURE_KEY", "NUM_PROXIES", "SECURE_COOKIES", "SECURE_SSL_REDIRECT",
         "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD")  # fmt: skip


def check_deploy(**extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in UNSET} | PRODUCTION_ENV | extra
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("extra", [{}, {"NUM_PROXIES": "1"}], ids=["direct", "behind-a-proxy"])
def test_check_deploy_is_clean_with_the_production_environment(extra):
    result = check_deploy(**extra)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_warns_when_https_is_turned_off():
    result = check_deploy(SECURE_SSL_REDIRECT="0")

    assert result.returncode != 0
    assert "security.W008" in result.stdout + result.stderr


# --- HTTPS ------------------------------------------------------------------------------------------


@pytest.fixture
def https_only(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000


def test_plain_http_is_redirected_to_https(client, https_only, db):
    response = client.get("/admin/login/")

    assert response.status_code == 301 and response["Location"] == "https://testserver/admin/login/"


def test_health_probes_answer_over_plain_http(client, https_only):
    assert client.get("/health/live/").status_code == 200


def test_behind_a_proxy_its_forwarded_proto_counts(client, https_only, settings, db):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    response = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")

    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


# --- Content-Security-Policy ------------------------------------------------------------------------


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


def inline_scripts(html: str) -> list[str]:
    """Script elements the policy would block: inline code (JSON data blocks are not run), event attributes."""
    tags = re.findall(r"<script\b[^>]*>", html)
    code = [tag for tag in tags if "src=" not in tag and 'type="application/json"' not in tag]
    handlers = re.findall(r"<[^>]+\son[a-z]+\s*=", html)
    return code + handlers


def test_the_admin_carries_a_strict_policy(client, db):
    response = client.get("/admin/login/")

    policy = directives(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["form-action"] == ["'self'"]


def test_the_api_docs_serve_swagger_ui_from_this_site_and_run_no_inline_script(client):
    page = client.get("/api/docs/")
    script = client.get("/api/docs/?script=")
    content = page.content.decode()
    bundle = re.search(r'<script src="([^"]*swagger-ui-bundle[^"]*)"', content).group(1)

    assert page.status_code == 200
    assert directives(page)["script-src"] == ["'self'"]
    assert inline_scripts(content) == []
    assert bundle.startswith("/static/") and "http" not in content.split("<body")[1].split("</body>")[0]
    assert 'src="/api/docs/?script="' in content
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


@pytest.fixture
def su_client(client, program):
    client.force_login(SuperuserFactory(email="", password="x-long-secret-1"))
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/members/member/{member}/change/",
        "/admin/loyalty/earningrule/add/",
        "/admin/events/webhookendpoint/add/",
        "/admin/analytics/dashboard/",
        "/admin/auth/user/{user}/password/",
        "/admin/password_change/",
    ],
)
def test_admin_pages_run_no_inline_script(su_client, program, path):
    member = MemberFactory(program=program)
    user = User.objects.get(username="root")

    response = su_client.get(path.format(member=member.pk, user=user.pk), follow=True)

    assert response.status_code == 200
    assert "Content-Security-Policy" in response
    assert inline_scripts(response.content.decode()) == []


def test_the_new_api_key_page_runs_no_inline_script(su_client, program):
    response = su_client.post("/admin/members/apikey/add/", {"program": program.pk, "name": "Till", "store": ""})

    assert response.status_code == 200 and "plain-key" in response.content.decode()
    assert inline_scripts(response.content.decode()) == []
    assert "members/apikey_created" in response.content.decode()

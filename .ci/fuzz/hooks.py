"""Schemathesis hooks of `make fuzz`: the credentials of the three API surfaces (bin/fuzz seeds them).

The member app's token is fetched by signing in, and fetched again after a 401: the run itself
calls POST /auth/logout/, which deletes the token."""

import os

import requests
import schemathesis

BASE_URL = os.environ["FUZZ_BASE_URL"]


def _set_authorization(case, value: str) -> None:
    case.headers = {**(case.headers or {}), "Authorization": value}


@schemathesis.auth(refresh_interval=None).apply_to(path_regex="^/api/pos/")
class PosApiKey:
    def get(self, case, context):
        return os.environ["FUZZ_POS_KEY"]

    def set(self, case, data, context):
        _set_authorization(case, f"Api-Key {data}")


@schemathesis.auth(refresh_interval=None).apply_to(path_regex="^/api/manage/")
class ManagerToken:
    def get(self, case, context):
        return os.environ["FUZZ_MANAGE_TOKEN"]

    def set(self, case, data, context):
        _set_authorization(case, f"Token {data}")


@schemathesis.auth(refresh_interval=3600, retry_on=[401]).apply_to(path_regex="^/api/app/")
class MemberAppToken:
    def get(self, case, context):
        credentials = {
            "program": os.environ["FUZZ_PROGRAM"],
            "email": os.environ["FUZZ_APP_EMAIL"],
            "password": os.environ["FUZZ_APP_PASSWORD"],
        }
        # Its own client address (NUM_PROXIES=1 in bin/fuzz): the run's failed sign-ins from 127.0.0.1 are
        # throttled per address, and must not lock this sign-in out.
        headers = {"X-Forwarded-For": "127.0.0.2"}
        response = requests.post(f"{BASE_URL}/api/app/v1/auth/token/", json=credentials, headers=headers, timeout=30)
        response.raise_for_status()
        return response.json()["token"]

    def set(self, case, data, context):
        _set_authorization(case, f"Token {data}")

#!/usr/bin/env python3
"""Interoperability with Authlib, a second OAuth 2 client nobody here wrote (beside oauth4webapi).

Against one demo server binary: RFC 8414 discovery; client_credentials with client_secret_basic
and client_secret_post; the token opening /protected; introspection by another client; revocation
by the owner (and introspection seeing it); the refresh grant of a /login session by the
first-party public client.

Usage: authlib_oauth.py <path to axum_server or hyper_server>   (run by .ci/run)
"""
import re
import subprocess
import sys

import requests
from authlib.integrations.requests_client import OAuth2Session

SECRET = "authlib-interop-secret-that-is-long-enough-0123456789"
CLIENTS = "client1:secret1:api.read api.write;client2:secret2:api.read"


def start(binary):
    env = {"BIND_ADDR": "127.0.0.1:0", "RUST_LOG": "info", "JWT_SECRET": SECRET,
           "OAUTH_CLIENTS": CLIENTS, "LOGIN_IP_LIMIT": "1000/60"}
    proc = subprocess.Popen([binary], env=env, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        m = re.search(r"listening.*addr\S*?(\d+\.\d+\.\d+\.\d+:\d+)", re.sub(r"\x1b\[[0-9;]*m", "", line))
        if m:
            return proc, f"http://{m.group(1)}"
    raise SystemExit(f"{binary}: server exited before listening")


def check(condition, what):
    if not condition:
        raise SystemExit(f"authlib interop: {what}")


def protected(base, token):
    return requests.get(f"{base}/protected", headers={"authorization": f"Bearer {token}"}, timeout=10)


def run(binary):
    proc, base = start(binary)
    try:
        meta = requests.get(f"{base}/.well-known/oauth-authorization-server", timeout=10).json()
        check(meta["issuer"] == base, f"issuer {meta['issuer']!r}")
        token = None
        for method in ("client_secret_basic", "client_secret_post"):
            client = OAuth2Session("client1", "secret1", token_endpoint_auth_method=method,
                                   scope="api.read")
            token = client.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
            check(token["token_type"] == "Bearer" and token["scope"] == "api.read", f"{method}: {token}")
            r = protected(base, token["access_token"])
            check(r.status_code == 200 and r.json()["client_id"] == "client1", f"{method}: /protected {r.text}")

        other = OAuth2Session("client2", "secret2", token_endpoint_auth_method="client_secret_basic")
        seen = other.introspect_token(meta["introspection_endpoint"], token=token["access_token"]).json()
        check(seen["active"] is True and seen["client_id"] == "client1", f"introspection {seen}")

        owner = OAuth2Session("client1", "secret1", token_endpoint_auth_method="client_secret_post")
        r = other.revoke_token(meta["revocation_endpoint"], token=token["access_token"])
        check(r.status_code == 400, f"another client's revocation: {r.status_code}")
        r = owner.revoke_token(meta["revocation_endpoint"], token=token["access_token"],
                               token_type_hint="access_token")
        check(r.status_code == 200, f"revocation: {r.status_code} {r.text}")
        seen = other.introspect_token(meta["introspection_endpoint"], token=token["access_token"]).json()
        check(seen == {"active": False}, f"introspection after revocation {seen}")
        check(protected(base, token["access_token"]).status_code == 401, "revoked token still passes")

        login = requests.post(f"{base}/login", json={"username": "user1", "password": "password1"}, timeout=10)
        check(login.status_code == 200, f"login {login.status_code}")
        first_party = OAuth2Session("first-party", token_endpoint_auth_method="none")
        renewed = first_party.refresh_token(meta["token_endpoint"], refresh_token=login.json()["refresh_token"])
        check(renewed["refresh_token"] != login.json()["refresh_token"], "rotation")
        check(protected(base, renewed["access_token"]).status_code == 200, "renewed token")
        print(f"authlib against {binary.rsplit('/', 1)[-1]}: discovery, client_credentials (basic, post), "
              "introspection, revocation, refresh: ok")
    finally:
        proc.kill()


if __name__ == "__main__":
    run(sys.argv[1])

#!/usr/bin/env python3
"""Interoperability with PyJWT, a JWT library independent of ours.

For each algorithm, start the axum demo server, then
  1. mint {sub, username, iat, exp} with PyJWT and call /protected: must be 200 with the identity;
  2. log in and verify the issued token with PyJWT (public key or secret): must validate.

Usage: pyjwt_interop.py <path to axum_server binary>   (run by .ci/run)
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import jwt  # PyJWT

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEYS = os.path.join(ROOT, "tests", "keys")
SECRET = "interop-secret-that-is-64-bytes-long-so-hs512-is-fine-0123456789"
CASES = {
    "HS256": None,
    "HS512": None,
    "RS256": ("rsa_private.pem", "rsa_public.pem"),
    "PS256": ("rsa_private.pem", "rsa_public.pem"),
    "ES256": ("ec256_private.pem", "ec256_public.pem"),
    "ES384": ("ec384_private.pem", "ec384_public.pem"),
    "EdDSA": ("ed25519_private.pem", "ed25519_public.pem"),
}


def start(binary, alg, files):
    env = {"BIND_ADDR": "127.0.0.1:0", "JWT_ALGORITHM": alg, "RUST_LOG": "info",
           "JWT_ISSUER": "interop-issuer", "JWT_AUDIENCE": "interop-api"}
    if files:
        env["JWT_PRIVATE_KEY_FILE"] = os.path.join(KEYS, files[0])
        env["JWT_PUBLIC_KEY_FILE"] = os.path.join(KEYS, files[1])
    else:
        env["JWT_SECRET"] = SECRET
    proc = subprocess.Popen([binary], env=env, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        m = re.search(r"listening.*addr\S*?(\d+\.\d+\.\d+\.\d+:\d+)", re.sub(r"\x1b\[[0-9;]*m", "", line))
        if m:
            return proc, m.group(1)
    raise SystemExit(f"{alg}: server exited before listening")


def call(addr, path, token=None, body=None):
    return call_with(addr, path, body=body, headers={"Authorization": f"Bearer {token}"} if token else {})


def call_with(addr, path, body=None, headers=None, challenge=False):
    """One request; returns (status, body), or (status, body, WWW-Authenticate values joined)."""
    req = urllib.request.Request(f"http://{addr}{path}", data=body)
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            status, data, found = res.status, res.read(), res.headers.get_all("WWW-Authenticate") or []
    except urllib.error.HTTPError as e:
        status, data, found = e.code, e.read(), e.headers.get_all("WWW-Authenticate") or []
    return (status, data, " | ".join(found)) if challenge else (status, data)


def main():
    binary = sys.argv[1]
    failures = 0
    for alg, files in CASES.items():
        proc, addr = start(binary, alg, files)
        try:
            signing = open(os.path.join(KEYS, files[0])).read() if files else SECRET
            verifying = open(os.path.join(KEYS, files[1])).read() if files else SECRET
            now = int(time.time())
            claims = {"sub": "1", "username": "user1", "iat": now, "exp": now + 300,
                      "iss": "interop-issuer", "aud": "interop-api"}
            token = jwt.encode(claims, signing, algorithm=alg)
            status, body = call(addr, "/protected", token)
            ok = status == 200 and json.loads(body) == {"id": 1, "username": "user1"}
            tampered = jwt.encode(dict(claims, exp=now - 3600), signing, algorithm=alg)
            expired_status, _ = call(addr, "/protected", tampered)
            ok = ok and expired_status == 401
            status, body = call(addr, "/login", body=b'{"username":"user2","password":"password2"}')
            issued = json.loads(body)["access_token"]
            decoded = jwt.decode(issued, verifying, algorithms=[alg], audience="interop-api",
                                 issuer="interop-issuer", options={"require": ["exp", "iat", "nbf", "jti", "sub"]})
            ok = ok and decoded["sub"] == "2" and decoded["username"] == "user2"
            print(f"{alg}: {'ok' if ok else 'FAILED'}")
            failures += 0 if ok else 1
        except Exception as e:  # noqa: BLE001 - report and count every failure
            print(f"{alg}: FAILED ({e!r})")
            failures += 1
        finally:
            proc.kill()
            proc.wait()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

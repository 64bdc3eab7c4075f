#!/usr/bin/env python3
"""DPoP (RFC 9449) interoperability with proofs made by PyJWT, a JWT library independent of ours.

Start the axum demo server (DPOP=allowed, the default), then for ES256, EdDSA and PS256 keys
made with `cryptography`:
  1. log in with a PyJWT-made proof: the token must be bound (token_type DPoP, cnf.jkt equal to
     the key's RFC 7638 thumbprint computed here);
  2. call /protected with `Authorization: DPoP` and a PyJWT-made proof with `ath`: 200;
  3. the same proof again: 401 with a DPoP challenge; a proof with the wrong `htm`: 401.

Usage: pyjwt_dpop.py <path to axum_server binary>   (run by .ci/run)
"""
import base64
import hashlib
import json
import sys
import time
import uuid

import jwt  # PyJWT
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pyjwt_interop import call_with, start


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint(jwk):
    required = {"EC": ["crv", "kty", "x", "y"], "OKP": ["crv", "kty", "x"], "RSA": ["e", "kty", "n"]}
    members = {k: jwk[k] for k in required[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64(hashlib.sha256(canonical).digest())


def public_jwk(alg, key):
    algorithm = jwt.get_algorithm_by_name(alg)
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    return {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y", "n", "e")}


def proof(alg, key, jwk, method, url, token=None):
    claims = {"jti": str(uuid.uuid4()), "htm": method, "htu": url, "iat": int(time.time())}
    if token:
        claims["ath"] = b64(hashlib.sha256(token.encode()).digest())
    return jwt.encode(claims, key, algorithm=alg, headers={"typ": "dpop+jwt", "jwk": jwk})


KEYS = {
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "EdDSA": lambda: ed25519.Ed25519PrivateKey.generate(),
    "PS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
}


def main():
    binary = sys.argv[1]
    proc, addr = start(binary, "HS256", None)
    failures = 0
    try:
        for alg, make in KEYS.items():
            try:
                key = make()
                jwk = public_jwk(alg, key)
                login_proof = proof(alg, key, jwk, "POST", f"http://{addr}/login")
                status, body = call_with(addr, "/login", body=b'{"username":"user1","password":"password1"}',
                                         headers={"DPoP": login_proof})
                answer = json.loads(body)
                token = answer["access_token"]
                claims = jwt.decode(token, options={"verify_signature": False})
                ok = status == 200 and answer["token_type"] == "DPoP" \
                    and claims["cnf"]["jkt"] == thumbprint(jwk)
                url = f"http://{addr}/protected"
                first = proof(alg, key, jwk, "GET", url, token)
                status, body = call_with(addr, "/protected", headers={"Authorization": f"DPoP {token}", "DPoP": first})
                ok = ok and status == 200 and json.loads(body)["username"] == "user1"
                status, _, challenge = call_with(addr, "/protected", headers={"Authorization": f"DPoP {token}", "DPoP": first},
                                                 challenge=True)
                ok = ok and status == 401 and "invalid_dpop_proof" in challenge
                wrong = proof(alg, key, jwk, "POST", url, token)
                status, _ = call_with(addr, "/protected", headers={"Authorization": f"DPoP {token}", "DPoP": wrong})
                ok = ok and status == 401
                print(f"DPoP {alg}: {'ok' if ok else 'FAILED'}")
                failures += 0 if ok else 1
            except Exception as e:  # noqa: BLE001 - report and count every failure
                print(f"DPoP {alg}: FAILED ({e!r})")
                failures += 1
    finally:
        proc.kill()
        proc.wait()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

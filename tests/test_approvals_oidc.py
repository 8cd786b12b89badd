"""OIDC identities for approvals (issue 27): tokens verified against a local JWKS endpoint.

The provider is a thread of this process serving ``{"keys": [...]}`` (an RSA and an EC key) and, for the
Basic-login cases, a stand-in for ``GET /api/2.0/mlflow/users/current`` that records what it was sent.
The end-to-end test runs on the session's plain ``mlflow server`` (no authentication: it vouches for
nobody), so only tokens can name anybody there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from mlflow import MlflowClient

from tests.approvals_world import World, basic
from watcher.approvals.identity import Caller, Unverified, verify_caller
from watcher.config.approvals import OidcConfig

ISSUER = "https://login.example.test"
AUDIENCE = "registry-watcher"
PROVIDER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PROVIDER_EC = ec.generate_private_key(ec.SECP256R1())
STRANGER = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # not in the JWKS
CAROL_BASIC = basic("carol")["authorization"]


class Provider:
    """The identity provider's JWKS and a users/current stand-in on one free loopback port."""

    def __init__(self) -> None:
        keys = [{**RSAAlgorithm.to_jwk(PROVIDER_RSA.public_key(), as_dict=True), "kid": "rsa1", "use": "sig",
                 "alg": "RS256"},
                {**ECAlgorithm.to_jwk(PROVIDER_EC.public_key(), as_dict=True), "kid": "ec1", "use": "sig",
                 "alg": "ES256"}]
        self.jwks = json.dumps({"keys": keys}).encode()
        self.seen: list[dict[str, str]] = []  # headers of every users/current request
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path == "/jwks.json":
                    self._answer(200, provider.jwks)
                elif self.path.endswith("/api/2.0/mlflow/users/current"):
                    provider.seen.append({k.lower(): v for k, v in self.headers.items()})
                    known = self.headers.get("Authorization") == CAROL_BASIC
                    self._answer(200 if known else 401, b'{"user": {"username": "carol"}}' if known else b"{}")
                else:
                    self._answer(404, b"{}")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def oidc(self, **overrides: Any) -> dict[str, Any]:
        return {"issuer": ISSUER, "audience": AUDIENCE, "jwks_url": f"{self.base}/jwks.json", **overrides}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    found = Provider()
    yield found
    found.close()


def token(user: str | None, *, key: Any = PROVIDER_RSA, kid: str = "rsa1", alg: str = "RS256",
          exp_in: float = 300, **claims: Any) -> str:
    """A token as the provider would issue it, but for what the arguments change."""
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + int(exp_in), **claims}
    if user is not None:
        payload["preferred_username"] = user
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(alg: str, secret: bytes, user: str = "bob", kid: str = "rsa1") -> str:
    """A token PyJWT refuses to make: ``none`` (no signature) or HS256 keyed with any bytes (the
    provider's public key included: the classic key-confusion forgery)."""
    now = int(time.time())
    head = _b64(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300,
                            "preferred_username": user}).encode())
    signing_input = f"{head}.{body}".encode()
    sig = b"" if alg == "none" else hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def _verify(provider: Provider, headers: dict[str, str], **oidc: Any) -> Caller:
    return verify_caller(headers, f"http://admin:daemon-secret@{provider.base[7:]}/",
                         OidcConfig.model_validate(provider.oidc(**oidc)))


def _bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


def test_a_valid_token_names_its_user(provider):
    assert _verify(provider, _bearer(token("bob"))) == Caller("bob", "oidc")
    assert _verify(provider, _bearer(token("alice", key=PROVIDER_EC, kid="ec1", alg="ES256"))) == Caller("alice", "oidc")


PUBLIC_PEM = PROVIDER_RSA.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize(("case", "make", "why"), [
    ("HS256 with a shared secret", lambda: hand_made("HS256", b"a-secret-anyone-could-guess"), "algorithm .HS256. is not accepted"),
    ("HS256 keyed with the provider's public key", lambda: hand_made("HS256", PUBLIC_PEM), "algorithm .HS256. is not accepted"),
    ("alg none", lambda: hand_made("none", b""), "algorithm .none. is not accepted"),
    ("expired", lambda: token("bob", exp_in=-120), "Expired"),
    ("another issuer", lambda: token("bob", iss="https://evil.example.test"), "Issuer"),
    ("another audience", lambda: token("bob", aud="another-app"), "Audience"),
    ("another key, the provider's key id", lambda: token("bob", key=STRANGER), "Signature"),
    ("another key, its own key id", lambda: token("bob", key=STRANGER, kid="stranger"), "signing key"),
    ("no key id", lambda: jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60,
                                      "preferred_username": "bob"}, PROVIDER_RSA, algorithm="RS256"), "signing key"),
    ("an RSA signature under the EC key's id", lambda: token("bob", kid="ec1"), "not its key's"),
    ("no username claim", lambda: token(None), "preferred_username"),
    ("no expiry", lambda: jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "preferred_username": "bob"}, PROVIDER_RSA,
                                     algorithm="RS256", headers={"kid": "rsa1"}), "exp"),
    ("not a token", lambda: "not-a-jwt", "DecodeError"),
])
def test_tokens_refused(provider, case, make, why):
    with pytest.raises(Unverified, match=why):
        _verify(provider, _bearer(make()))


def test_username_from_the_configured_claim(provider):
    minted = token("bob", email="robert@example.test")
    assert _verify(provider, _bearer(minted), username_claim="email") == Caller("robert@example.test", "oidc")
    with pytest.raises(Unverified, match="'upn' claim"):
        _verify(provider, _bearer(minted), username_claim="upn")


def test_a_token_beats_a_basic_login_and_never_falls_back_to_it(provider):
    both = {**basic("carol"), "x-registry-watcher-token": token("bob")}
    assert _verify(provider, both) == Caller("bob", "oidc")
    with pytest.raises(Unverified, match="Audience"):  # a bad token with a good login: still refused
        _verify(provider, {**basic("carol"), "x-registry-watcher-token": token("bob", aud="x")})
    assert provider.seen == []  # the Basic login was never even asked about


def test_basic_login_sends_only_the_callers_header(provider):
    provider.seen.clear()
    assert _verify(provider, basic("carol")) == Caller("carol", "basic")
    with pytest.raises(Unverified, match="wrong username or password"):
        _verify(provider, basic("carol", "not-her-password"))
    assert [h["authorization"] for h in provider.seen] == [CAROL_BASIC, basic("carol", "not-her-password")["authorization"]]
    assert all("daemon-secret" not in json.dumps(h) for h in provider.seen)  # the URI's user:pass@ stays home


def test_no_provider_no_token_and_unreachable_keys(provider):
    with pytest.raises(Unverified, match="no identity.oidc"):
        verify_caller(_bearer(token("bob")), "http://127.0.0.1:9", None)
    with pytest.raises(Unverified, match="no credentials"):
        _verify(provider, {})
    with pytest.raises(Unverified, match="keys"):
        _verify(provider, _bearer(token("bob")), jwks_url="http://127.0.0.1:9/jwks.json")


@pytest.mark.integration
def test_oidc_on_a_server_without_authentication(sqlite_server, provider, monkeypatch):
    """The acceptance: another key, another audience and an unverifiable Basic login are refused; valid
    tokens of named approvers move production."""
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    w = World(sqlite_server, MlflowClient(sqlite_server), identity={"oidc": provider.oidc()})
    http = w.serve()
    base = f"http://127.0.0.1:{http.port}/api/v1/approvals"
    try:
        made = requests.post(base, json={"model": w.model, "version": "2", "reason": "oidc"},
                             headers=_bearer(token("carol")), timeout=60)
        assert made.status_code == 201, made.text
        approve = f"{base}/{made.json()['id']}/approve"
        for headers, why in ((_bearer(token("bob", key=STRANGER)), "Signature"),
                             (_bearer(token("bob", aud="another-app")), "Audience"),
                             (basic("bob"), "no authentication")):
            refused = requests.post(approve, json={}, headers=headers, timeout=60)
            assert refused.status_code == 401 and why in refused.json()["detail"], refused.text
        w.tick()
        assert w.production() == "1"
        for user in ("bob", "alice"):
            done = requests.post(approve, json={"comment": f"ok by {user}"}, headers=_bearer(token(user)), timeout=60)
            assert done.status_code == 200, done.text
        assert done.json()["state"] == "approved"
        w.tick()
        assert w.production() == "2"
        last = w.history()[-1]
        assert last["requested_by"] == "carol" and sorted(last["approved_by"]) == ["alice", "bob"]
    finally:
        http.stop()


def _self_signed(where: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and localhost, signed by its own key: (certfile, keyfile)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registry-watcher test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = where / "cert.pem", where / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return str(certfile), str(keyfile)


@pytest.mark.integration
def test_cli_over_tls_trusts_the_ca_bundle(sqlite_server, provider, tmp_path, monkeypatch, capsys):
    """The API served over HTTPS (``http.tls_certfile``/``tls_keyfile``); the CLI finds ``https`` from the
    config, refuses a certificate it cannot verify and trusts ``$REGISTRY_WATCHER_CA_BUNDLE``."""
    from watcher.cli import main

    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "REGISTRY_WATCHER_API_URL",
                 "REGISTRY_WATCHER_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    certfile, keyfile = _self_signed(tmp_path)
    tls = {"host": "127.0.0.1", "port": 0, "tls_certfile": certfile, "tls_keyfile": keyfile}
    w = World(sqlite_server, MlflowClient(sqlite_server), identity={"oidc": provider.oidc()}, http=tls)
    http = w.serve()
    path = tmp_path / "w.yaml"
    path.write_text(json.dumps({**json.loads(w.config.model_dump_json(exclude_defaults=True)),
                                "http": {**tls, "port": http.port}}))

    def cli(user: str, *argv: str) -> tuple[int, str]:
        monkeypatch.setenv("REGISTRY_WATCHER_TOKEN", token(user))
        code = main([*argv, "--config", str(path)])
        return code, capsys.readouterr().err

    try:
        code, err = cli("carol", "promote", "--model", w.model, "--version", "2", "--reason", "over tls")
        assert code == 1 and "https://127.0.0.1" in err and "CERTIFICATE_VERIFY_FAILED" in err, err
        monkeypatch.setenv("REGISTRY_WATCHER_CA_BUNDLE", certfile)
        for argv in (("carol", "promote", "--reason", "over tls"), ("bob", "approve"), ("alice", "approve")):
            code, err = cli(*argv, "--model", w.model, "--version", "2")
            assert code == 0 and "error:" not in err, err
        w.tick()
        assert w.production() == "2"
    finally:
        http.stop()

"""A small identity provider on loopback for the fast sign-in tests: real HTTP, real RSA keys.

It serves a discovery document, a JWKS (whose keys a test can rotate), a userinfo endpoint, and a
token endpoint that checks the client's credentials, the redirect URI and the PKCE verifier before
it issues an RS256 ID token. The end-to-end test uses the real `oidc-provider` instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "test-app-client"


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        return cls(kid or f"kid-{uuid.uuid4().hex[:8]}", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def public_jwk(self) -> dict:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}


class FakeProvider:
    """Start with ``FakeProvider().start()``; ``.issuer`` is its base URL; ``.stop()`` when done."""

    def __init__(self, client_secret: str = "") -> None:
        self.key = SigningKey.generate()
        self.published: list[SigningKey] = [self.key]
        self.client_secret = client_secret
        self.jwks_hits = 0
        self.discovery_hits = 0
        self.userinfo: dict[str, dict] = {}  # access token -> claims
        self.codes: dict[str, dict] = {}  # authorization code -> what the token endpoint issues
        self.token_requests: list[dict] = []
        self.discovery_issuer = ""  # set to publish a discovery document naming another issuer
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def discovery(self) -> dict:
        return {
            "issuer": self.discovery_issuer or self.issuer,
            "authorization_endpoint": f"{self.issuer}/oauth2/authorize",
            "token_endpoint": f"{self.issuer}/oauth2/token",
            "userinfo_endpoint": f"{self.issuer}/oauth2/userInfo",
            "jwks_uri": f"{self.issuer}/.well-known/jwks.json",
            "end_session_endpoint": f"{self.issuer}/logout",
        }

    # --- tokens ---------------------------------------------------------------------------------
    def token(self, claims: dict | None = None, *, key: SigningKey | None = None, use: str = "id", **header) -> str:
        """A token signed by ``key`` (the published key by default) with sensible Cognito claims."""
        key = key or self.key
        now = int(time.time())
        body = {
            "sub": "sub-1",
            "iss": self.issuer,
            "iat": now,
            "exp": now + 3600,
            "token_use": use,
            "cognito:groups": ["Viewer"],
        }
        if use == "id":
            body.update({"aud": CLIENT_ID, "email": "person@example.com", "email_verified": True})
        else:
            body.update({"client_id": CLIENT_ID, "scope": "openid email", "username": "person"})
        body.update(claims or {})
        for name in [k for k, v in body.items() if v is None]:
            del body[name]
        return jwt.encode(body, key.private, algorithm="RS256", headers={"kid": key.kid, **header})

    def issue_code(self, *, claims: dict, nonce: str, code_challenge: str, redirect_uri: str) -> str:
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "claims": claims,
            "nonce": nonce,
            "code_challenge": code_challenge,
            "redirect_uri": redirect_uri,
        }
        return code

    # --- HTTP -----------------------------------------------------------------------------------
    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _json(self, status: int, data: dict) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path = urlsplit(self.path).path
                if path == "/.well-known/openid-configuration":
                    provider.discovery_hits += 1
                    return self._json(200, provider.discovery())
                if path == "/.well-known/jwks.json":
                    provider.jwks_hits += 1
                    return self._json(200, {"keys": [k.public_jwk() for k in provider.published]})
                if path == "/oauth2/userInfo":
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    claims = provider.userinfo.get(token)
                    return self._json(200, claims) if claims else self._json(401, {"error": "invalid_token"})
                return self._json(404, {"error": "not_found"})

            def do_POST(self):
                if urlsplit(self.path).path != "/oauth2/token":
                    return self._json(404, {"error": "not_found"})
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                provider.token_requests.append({"form": form, "authorization": self.headers.get("Authorization", "")})
                expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{provider.client_secret}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self._json(401, {"error": "invalid_client"})
                grant = provider.codes.pop(form.get("code", ""), None)
                if grant is None or form.get("grant_type") != "authorization_code":
                    return self._json(400, {"error": "invalid_grant", "error_description": "unknown code"})
                if form.get("redirect_uri") != grant["redirect_uri"]:
                    return self._json(400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"})
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if not verifier or challenge != grant["code_challenge"]:
                    return self._json(400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
                id_token = provider.token({"nonce": grant["nonce"], **grant["claims"]})
                access_token = provider.token({"sub": grant["claims"].get("sub", "sub-1")}, use="access")
                tokens = {"id_token": id_token, "access_token": access_token, "token_type": "Bearer"}
                return self._json(200, {**tokens, "expires_in": 3600})

        return Handler

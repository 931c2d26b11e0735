"""A local OIDC issuer for tests: discovery document and JWKS served on
127.0.0.1, tokens signed with keys the test generates."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


class LocalIssuer:
    """Serves `/.well-known/openid-configuration` and `/jwks` until `close()`."""

    def __init__(self, audience: str = "customer") -> None:
        self.audience = audience
        self.keys: dict[str, rsa.RSAPrivateKey] = {"key-1": _new_key()}
        self.jwks_requests = 0
        self.jwks_status = 200  # another status plays a key endpoint that is down
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body: dict[str, Any] = {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks"}
                elif self.path == "/jwks":
                    issuer.jwks_requests += 1
                    if issuer.jwks_status != 200:
                        self.send_error(issuer.jwks_status)
                        return
                    body = {"keys": [issuer.jwk(kid) for kid in issuer.keys]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def jwk(self, kid: str) -> dict[str, Any]:
        """The public JWK of key `kid`."""
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key(), as_dict=True)
        return {**public, "kid": kid, "alg": "RS256", "use": "sig"}

    def token(self, subject: str, kid: str = "key-1", **claims: Any) -> str:
        """An RS256 token for `subject`, valid for five minutes, unless `claims` say otherwise."""
        now = int(time.time())
        payload = {
            "iss": self.url,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "exp": now + 300,
            **claims,
        }
        return jwt.encode(payload, self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)

"""FastMCP's OIDCProxy in front of the bench's oidc-provider, run the way its docs show:
one FastMCP server with `auth=OIDCProxy(...)`, `transport="http"`, one uvicorn process.

Usage: fastmcp_proxy.py PORT ISSUER CLIENT_ID SECRET_FILE API
State (DCR clients, transactions, codes, upstream tokens) goes to FastMCP's default store, an
encrypted file tree under $FASTMCP_HOME/oauth-proxy/ written with fsync, so a 201 from
/register is on disk as it is with dcr-shim.
"""

import json
import sys
import urllib.request

from fastmcp import FastMCP
from fastmcp.server.auth.oidc_proxy import OIDCProxy
from fastmcp.server.auth.providers.jwt import JWTVerifier

port, issuer, client_id, secret_file, api = sys.argv[1:6]
with open(secret_file) as f:
    secret = f.read().strip()
with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration") as r:
    jwks_uri = json.load(r)["jwks_uri"]

auth = OIDCProxy(
    config_url=f"{issuer}/.well-known/openid-configuration",
    client_id=client_id,
    client_secret=secret,
    base_url=f"http://127.0.0.1:{port}",
    # The IdP's access tokens are JWTs for its API (audience `api`), not for this server's URL.
    token_verifier=JWTVerifier(jwks_uri=jwks_uri, issuer=issuer, audience=api),
    # What DCR clients may ask for; offline_access is what makes the IdP issue a refresh token.
    valid_scopes=["openid", "offline_access", f"{api}/files.read"],
    # The client's RFC 8707 resource is this server's /mcp URL, which the IdP does not know; the
    # IdP then uses its default resource (the API), as it does for dcr-shim's requests.
    forward_resource=False,
)

mcp = FastMCP("bench-files", auth=auth)


@mcp.tool
def ping() -> str:
    """Answers pong."""
    return "pong"


if __name__ == "__main__":
    mcp.run(
        transport="http",
        host="127.0.0.1",
        port=int(port),
        show_banner=False,
        # One line per request at INFO would be uvicorn's access log; FastMCP's own INFO stays.
        uvicorn_config={"access_log": False},
    )

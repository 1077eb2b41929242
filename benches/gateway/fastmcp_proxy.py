"""FastMCP's proxy with its own auth in front of the gateway benchmark's MCP server, run the way
its docs show: `create_proxy(backend, auth=JWTVerifier(...))`, HTTP transport, one uvicorn
process. It verifies the same minted tokens the gateway does (the tenant's JWKS, issuer and the
resource as the audience).

Usage: fastmcp_proxy.py PORT BACKEND_URL JWKS_URI ISSUER AUDIENCE
"""

import sys

from fastmcp.server import create_proxy
from fastmcp.server.auth.providers.jwt import JWTVerifier

port, backend, jwks_uri, issuer, audience = sys.argv[1:6]
auth = JWTVerifier(jwks_uri=jwks_uri, issuer=issuer, audience=audience, algorithm="ES256")
proxy = create_proxy(backend, name="bench-proxy", auth=auth)
proxy.run(transport="http", host="127.0.0.1", port=int(port), log_level="warning", show_banner=False, stateless_http=True)

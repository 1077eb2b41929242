"""An MCP server with no auth code, on the official Python SDK (v2's MCPServer over its
Streamable HTTP app, DNS rebinding protection on): reached only through dcr-shim's gateway.
`whoami` and `delete_file` trust only the identity JWT the gateway adds, verified with the
tenant's JWKS, its own type and this server's URL as the audience; `count` reports progress.

    python server.py --port P --issuer ISSUER --jwks-uri URI --url http://127.0.0.1:P/mcp
Prints one line, `ready`, once it listens; every request's method and headers go to stderr as
JSON lines, for the suite to check what reached it.
"""

import argparse
import asyncio
import json
import sys

import jwt
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings

IDENTITY_HEADER = "x-dcr-shim-identity"
IDENTITY_TYPE = "dcr-shim-identity+jwt"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--jwks-uri", required=True)
    p.add_argument("--url", required=True)
    args = p.parse_args()
    keys = jwt.PyJWKClient(args.jwks_uri)

    def identity(ctx: Context) -> dict:
        token = (ctx.headers or {}).get(IDENTITY_HEADER)
        if not token:
            raise ValueError("no identity JWT")
        if jwt.get_unverified_header(token).get("typ") != IDENTITY_TYPE:
            raise ValueError("not an identity JWT")
        key = keys.get_signing_key_from_jwt(token)
        return jwt.decode(token, key, algorithms=["ES256", "RS256"], audience=args.url, issuer=args.issuer)

    server = MCPServer("e2e-gateway-python")

    @server.tool()
    async def whoami(ctx: Context) -> str:
        """Who calls, from the gateway's identity JWT."""
        claims = identity(ctx)
        return json.dumps({"sub": claims["sub"], "claims": claims})

    @server.tool()
    async def count(to: int, ctx: Context) -> str:
        """Counts, with a progress notification per step."""
        for i in range(1, to + 1):
            await ctx.report_progress(i, to)
            await asyncio.sleep(0.02)
        return json.dumps({"counted": to})

    @server.tool()
    async def delete_file(name: str, ctx: Context) -> str:
        """Deletes a file."""
        claims = identity(ctx)
        return json.dumps({"deleted": name, "sub": claims["sub"], "scope": claims["scope"]})

    security = TransportSecuritySettings(allowed_hosts=[f"127.0.0.1:{args.port}"], allowed_origins=[])
    app = server.streamable_http_app(transport_security=security)

    async def recorded(scope, receive, send):
        if scope["type"] == "http":
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            print(json.dumps({"method": scope["method"], "headers": headers}), file=sys.stderr, flush=True)
        await app(scope, receive, send)

    config = uvicorn.Config(recorded, host="127.0.0.1", port=args.port, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(uv.serve())
        while not uv.started:
            await asyncio.sleep(0.05)
        print("ready", flush=True)
        await task

    asyncio.run(serve())


if __name__ == "__main__":
    main()

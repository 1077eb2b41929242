"""The official MCP Python SDK's client (v2: `Client`, which probes `server/discover` and speaks
the stateless 2026-07-28 protocol where the server does) with its OAuthClientProvider, logging
in through a dcr-shim tenant and calling tools through the gateway.

    python client.py --url RESOURCE --redirect-uri URI
Speaks JSON lines with the suite: it prints {"authorize": url} when the SDK sends the user to
the authorization server and reads back {"code", "state", "iss"} from the callback the suite's
browser reached; at the end it prints {"done": {...what the tools answered...}}.
"""

import argparse
import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def say(message: dict) -> None:
    print(json.dumps(message), flush=True)


async def read_line() -> dict:
    line = await asyncio.to_thread(sys.stdin.readline)
    return json.loads(line)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--redirect-uri", required=True)
    args = p.parse_args()
    storage = MemoryStorage()
    authorizations = []

    async def redirect(url: str) -> None:
        authorizations.append(url)
        say({"authorize": url})

    async def callback() -> AuthorizationCodeResult:
        answer = await read_line()
        return AuthorizationCodeResult(code=answer["code"], state=answer.get("state"), iss=answer.get("iss"))

    auth = OAuthClientProvider(
        server_url=args.url,
        client_metadata=OAuthClientMetadata(
            client_name="e2e python agent",
            redirect_uris=[args.redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect,
        callback_handler=callback,
    )
    progress = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with httpx2.AsyncClient(auth=auth, timeout=30) as http:
        async with Client(streamable_http_client(args.url, http_client=http)) as client:
            who = await client.call_tool("whoami", {})
            counted = await client.call_tool("count", {"to": 4}, progress_callback=on_progress)
            deleted = await client.call_tool("delete_file", {"name": "b.txt"})
    text = lambda r: json.loads(r.content[0].text) if not r.is_error else {"error": r.content[0].text}
    say({"done": {
        "whoami": text(who),
        "count": text(counted),
        "progress": progress,
        "delete": text(deleted),
        "authorizations": authorizations,
        "client_id": storage.client.client_id if storage.client else None,
    }})


if __name__ == "__main__":
    asyncio.run(main())

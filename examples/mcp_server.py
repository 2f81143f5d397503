"""A small, real MCP server (the `mcp` package's `MCPServer`, formerly `FastMCP`).

The example MCP agent and the MCP integration tests talk to it. Three tools on a tiny
order desk:

- `lookup_order(order_id)`: read-only, returns the order as structured content;
- `append_note(order_id, text)`: a side effect: appends one line to the notes file
  (`$MCP_NOTES_FILE`, default `mcp_notes.log` beside this file) and returns its number;
  an empty text is invalid arguments, which MCP reports as a JSON-RPC error (the client
  raises `MCPError`);
- `cancel_order(order_id)`: refuses orders that are not processing any more by raising
  `ToolError`, which MCP reports to the client as a result with `isError: true` (not as a
  protocol error).

Run it over stdio (what `stdio_client` spawns) or streamable HTTP on loopback:

    python examples/mcp_server.py
    python examples/mcp_server.py --http 8765     # http://127.0.0.1:8765/mcp
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

ORDERS: dict[str, dict[str, Any]] = {
    "ORD-1001": {"order_id": "ORD-1001", "total": 120.0, "status": "delivered"},
    "ORD-1002": {"order_id": "ORD-1002", "total": 35.5, "status": "processing"},
}

server = MCPServer(
    "order-desk",
    instructions="Look orders up before writing notes about them.",
    version="1.0.0",
    log_level="WARNING",
)


def notes_file() -> Path:
    """Where `append_note` writes; an environment variable so tests can point it anywhere."""
    default = Path(__file__).with_name("mcp_notes.log")
    return Path(os.environ.get("MCP_NOTES_FILE") or default)


@server.tool()
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order by id."""
    if order_id not in ORDERS:
        raise ToolError(f"no order {order_id}")
    return dict(ORDERS[order_id])


@server.tool()
def append_note(order_id: str, text: str) -> str:
    """Append a note about an order to the notes file (a side effect)."""
    if not text.strip():
        raise MCPError(code=INVALID_PARAMS, message="append_note: text must not be empty")
    path = notes_file()
    with path.open("a", encoding="utf-8") as f:
        f.write(f"{order_id}: {text}\n")
    count = len(path.read_text(encoding="utf-8").splitlines())
    return f"note {count} saved"


@server.tool()
def cancel_order(order_id: str) -> str:
    """Cancel an order that has not shipped yet."""
    status = ORDERS.get(order_id, {}).get("status")
    if status != "processing":
        raise ToolError(f"{order_id} cannot be cancelled: it is {status or 'unknown'}")
    return f"{order_id} cancelled"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP")
    args = parser.parse_args()
    if args.http is None:
        server.run()
    else:
        server.run("streamable-http", host="127.0.0.1", port=args.http, json_response=True)


if __name__ == "__main__":
    main()

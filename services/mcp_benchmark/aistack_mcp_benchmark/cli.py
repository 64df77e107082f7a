"""``aistack-mcp-benchmark serve [--host 0.0.0.0] [--port 8000] [--allow-no-auth]``."""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__

WARNING = """\
!!! aistack-mcp-benchmark: MCP_AUTH_TOKEN is not set and --allow-no-auth was given:
!!! /mcp is OPEN to anyone who can reach {host}:{port}. Anyone can start benchmarks
!!! (load on your LLM endpoints) and write to the RAG service. Local testing only."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="aistack-mcp-benchmark",
        description="The aistack benchmark MCP server (streamable HTTP at /mcp).",
    )
    ap.add_argument("--version", action="version", version=__version__)
    sub = ap.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="serve /mcp (bearer token MCP_AUTH_TOKEN), /healthz and /metrics",
        description="Environment: MCP_AUTH_TOKEN (required unless --allow-no-auth), RAG_URL, "
        "RAG_API_KEY, RESULTS_DIR (/results), LLM_BASE_URL, LLM_API_KEY, LLM_MODEL.",
    )
    serve.add_argument("--host", default="0.0.0.0", help="bind address (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--allow-no-auth",
        action="store_true",
        help="start without MCP_AUTH_TOKEN (no authentication at all: local testing only)",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = ap.parse_args(argv)
    return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    from .settings import Settings

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        sys.stderr.write(f"aistack-mcp-benchmark: {exc}\n")
        return 2
    if settings.auth_token is None:
        if not args.allow_no_auth:
            sys.stderr.write(
                "aistack-mcp-benchmark: refusing to start: MCP_AUTH_TOKEN is not set (the bearer "
                "token clients must send on /mcp); pass --allow-no-auth to run without "
                "authentication (local testing only)\n"
            )
            return 2
        sys.stderr.write(WARNING.format(host=args.host, port=args.port) + "\n")
        logging.getLogger("aistack_mcp_benchmark").warning(
            "authentication DISABLED (--allow-no-auth): /mcp is open"
        )
    try:
        from .server import create_app
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] == "llm_benchmark":
            sys.stderr.write(
                "aistack-mcp-benchmark: the llm_benchmark engine is not importable: in a checkout "
                "put plugins/module_utils on PYTHONPATH (the image has it installed)\n"
            )
            return 2
        raise
    import uvicorn

    uvicorn.run(
        create_app(settings, args.host),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        # The streams of long benchmark calls are closed by the session manager on shutdown.
        timeout_graceful_shutdown=10,
    )
    return 0


def run() -> None:
    raise SystemExit(main())

"""Command line: ``rag-pipeline serve --host H --port P`` and ``rag-pipeline layout``."""

from __future__ import annotations

import argparse
import json
import sys


def layout(indent: int | None) -> int:
    """Print the collection layout for the configuration in the environment (as JSON).

    Loads the embedder (for its dimension) but never opens the vector store: embedded Qdrant
    admits one process at a time, and playbooks ask for the layout while the service is down.
    """
    from pydantic import ValidationError

    from rag_pipeline.embeddings import EmbedderError, make_embedder
    from rag_pipeline.layout import describe_layout
    from rag_pipeline.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"rag-pipeline layout: invalid configuration: {exc}", file=sys.stderr)
        return 2
    try:
        embedder = make_embedder(settings)
        dimension = embedder.dimension
    except EmbedderError as exc:
        print(f"rag-pipeline layout: embedder unavailable: {exc}", file=sys.stderr)
        return 1
    embedder.close()
    print(json.dumps(describe_layout(settings, dimension), indent=indent))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rag-pipeline", description="aistack RAG pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service (configuration from env vars)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="info")
    show = sub.add_parser(
        "layout",
        help="print the collection layout (JSON, as GET /collection-layout) for the "
        "configuration in env vars; loads the embedder, does not open the vector store",
    )
    show.add_argument("--indent", type=int, default=None, help="pretty-print with this indent")
    args = parser.parse_args(argv)
    if args.command == "layout":
        return layout(args.indent)

    import uvicorn

    from rag_pipeline.logging_setup import uvicorn_log_config

    # Every line on stderr is JSON: uvicorn's start-up, error and access logs too.
    logs = {"log_level": args.log_level, "log_config": uvicorn_log_config(args.log_level)}
    if args.workers > 1:
        uvicorn.run(
            "rag_pipeline.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            **logs,  # type: ignore[arg-type]
        )
    else:
        from rag_pipeline.main import create_app

        uvicorn.run(create_app(), host=args.host, port=args.port, **logs)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

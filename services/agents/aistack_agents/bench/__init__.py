"""Agentic benchmarks: TravelPlanner (the official metrics over plans from an agent under test)
and a Vending-Bench simulation (long-horizon business, net worth as the score). Stdlib plus the
packages of .venv-agents (openai, httpx, a2a-sdk, prometheus_client)."""

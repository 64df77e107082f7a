"""The CrewAI research crew: Researcher → Writer → Reviewer (``Process.sequential``).

Importing this package turns off CrewAI's own telemetry and cloud tracing (it would try the
network at import and at every run); a deployment that wants them sets the variables itself.
CrewAI writes a small SQLite file under $XDG_DATA_HOME (the Deployment points it at /tmp).
OTEL_SDK_DISABLED is deliberately left alone: it would also silence the agents' own spans.
"""

import os

WORKFLOW = "crew"  # the metrics' and spans' workflow label

for _var, _value in (
    ("CREWAI_DISABLE_TELEMETRY", "true"),
    ("CREWAI_DISABLE_TRACKING", "true"),
    ("CREWAI_TRACING_ENABLED", "false"),
    # CrewAI keeps a SQLite file of the last kickoff under $XDG_DATA_HOME/<this name>
    # (default: the working directory's name); one stable name for it.
    ("CREWAI_STORAGE_DIR", "aistack-crew"),
):
    os.environ.setdefault(_var, _value)

"""Roles, goals and task texts of the crew. CrewAI's system prompt starts with
"You are <role>.", which tells the roles' requests apart (tests script replies by it)."""

from __future__ import annotations

from typing import Any

RESEARCHER = {
    "role": "Research analyst",
    "goal": "Collect the facts on the topic that the knowledge base supports, with their sources.",
    "backstory": (
        "You work only from the knowledge base: numbered passages given to you and the "
        "search_knowledge_base tool. You never invent sources or facts and you say plainly "
        "when the knowledge base has nothing on a point."
    ),
}
WRITER = {
    "role": "Technical writer",
    "goal": "Write a clear, accurate short report on the topic from the research notes.",
    "backstory": (
        "You turn research notes into a concise report for engineers. You keep the [n] "
        "citations of the notes and add no claims the notes do not support."
    ),
}
REVIEWER = {
    "role": "Reviewer",
    "goal": "Judge the report's accuracy, grounding and clarity and return a JSON verdict.",
    "backstory": (
        "You are a strict reviewer. You compare the report with the research notes and "
        "answer with one JSON object only."
    ),
}

VERDICT_FORMAT = (
    'one JSON object: {"score": <integer 0-100>, "issues": [<short strings>], '
    '"approved": <true|false>}'
)


def passages(sources: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"[{i}] ({s['document_id']}#{s['chunk_index']}) {s['text']}"
        for i, s in enumerate(sources, 1)
    )


def research_task(topic: str, sources: list[dict[str, Any]], retrieval_error: str | None) -> str:
    if retrieval_error:
        grounding = (
            f"The knowledge base could not be searched: {retrieval_error}. You have NO context: "
            "say so at the top of your notes, cite nothing and do not present anything as "
            "coming from the knowledge base."
        )
    elif sources:
        grounding = (
            "Passages from the knowledge base (cite them as [n]):\n"
            f"{passages(sources)}\n"
            "Use the search_knowledge_base tool for further queries if these do not suffice."
        )
    else:
        grounding = (
            "The knowledge base returned no passages for the topic. Try the "
            "search_knowledge_base tool; if it finds nothing either, say so."
        )
    return f"Research the topic: {topic}\n\n{grounding}"


RESEARCH_OUTPUT = "Research notes: the key facts as bullet points, each with its [n] citation."


def write_task(topic: str) -> str:
    return (
        f"Write a short report (at most 300 words) on the topic: {topic}. Use only the "
        "research notes in your context and keep their [n] citations. If the notes say there "
        "was no context, the report says so in its first sentence."
    )


WRITE_OUTPUT = "The report in plain text (Markdown allowed), with [n] citations."


def review_task(topic: str) -> str:
    return (
        f"Review the report on '{topic}' in your context against the research notes: are its "
        "claims supported and cited, is it clear and on topic? Approve it only if it can be "
        f"published as is. Reply with {VERDICT_FORMAT} and nothing else."
    )


REVIEW_OUTPUT = f"Only {VERDICT_FORMAT}"


def strict_review(system_prompt: str, topic: str, notes: str, report: str) -> list[dict[str, str]]:
    """The stricter second ask when the verdict did not parse: JSON only, schema spelled out."""
    return [
        {
            "role": "system",
            "content": (
                f"{system_prompt}\nYour previous reply was not valid JSON. Reply with exactly "
                f"{VERDICT_FORMAT}. No prose, no code fence, nothing before or after it."
            ),
        },
        {
            "role": "user",
            "content": (
                f"Topic: {topic}\n\nResearch notes:\n{notes}\n\nReport:\n{report}\n\n"
                "Your JSON verdict:"
            ),
        },
    ]

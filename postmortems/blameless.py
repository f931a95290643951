"""The blameless-language check: a pure function over text, no database, no Django.

It only warns, never blocks. Each warning names the rule, the phrase found, where it was found (a section
name or `contributing_factors[<n>]`), the line, and a suggestion. Text inside quotation marks or in a
Markdown blockquote is left alone: quoting what someone said in a chat during the incident is evidence,
not blame.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class LintWarning:
    rule: str
    phrase: str
    where: str
    line: int
    suggestion: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    suggestion: str


_I = re.IGNORECASE
RULES: tuple[Rule, ...] = (
    Rule(
        "counterfactual",
        re.compile(
            r"\b(?:should(?:n't| not)? have|could have|would have|failed to|forgot to|neglected to|"
            r"omitted to)\b",
            _I,
        ),
        "Describe what happened and what made it reasonable at the time, not what someone else could have "
        'done: "the check was not part of the deploy checklist" rather than "X should have checked".',
    ),
    Rule(
        "blame_label",
        re.compile(
            r"\b(?:human errors?|operator errors?|careless(?:ness|ly)?|negligen(?:t|ce)|"
            r"(?:at |their |his |her |whose )?fault(?!\s*[- ]?(?:toleran|injection|domain|line|zone)))\b|"
            r"\b(?:to )?blam(?:e|ed|es|ing)\b",
            _I,
        ),
        "Name the condition, not a culprit: which safeguard, signal or tool was missing or misleading?",
    ),
    Rule(
        "root_cause",
        re.compile(r"\broot[- ]causes?\b", _I),
        'Incidents rarely have a single cause: write "contributing factors" and list each one.',
    ),
    Rule(
        "why_didnt",
        re.compile(r"\bwhy (?:didn't|did not|wasn't|was not|weren't|were not|hadn't|had not|couldn't)\b", _I),
        'Ask "how" questions instead: "how did the situation look at the time?", "what made this hard to see?"',
    ),
)
PERSON_RULE = "person_named"
PERSON_SUGGESTION = (
    'Name a role, not a person: for example "the on-call engineer", "the deploying engineer", "the incident commander".'
)
# Usernames that are role words: "the responder" names a role, not a person.
ROLE_WORDS = frozenset(
    {"admin", "manager", "responder", "engineer", "oncall", "on-call", "commander", "operator", "user", "root"}
)

# Quotations: "…", “…”, ‘…’ (not apostrophes), and blockquote lines starting with ">".
_QUOTES = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”|‘[^’\n]*’|(?<!\w)'[^'\n]*'(?!\w)")
_BLOCKQUOTE = re.compile(r"^[ \t]{0,3}>.*$", re.MULTILINE)


def _blank_quotations(text: str) -> str:
    """Replace quoted text by spaces, keeping offsets and line numbers."""

    def blank(match: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", match.group(0))

    return _QUOTES.sub(blank, _BLOCKQUOTE.sub(blank, text))


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _scan(text: str, where: str) -> list[LintWarning]:
    visible = _blank_quotations(text or "")
    found = []
    for rule in RULES:
        for match in rule.pattern.finditer(visible):
            found.append(
                LintWarning(
                    rule.name, text[match.start() : match.end()], where, _line(text, match.start()), rule.suggestion
                )
            )
    return found


def _names_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    cleaned = {" ".join(name.split()) for name in names if name and name.strip()}
    cleaned = {name for name in cleaned if len(name) >= 3 and name.lower() not in ROLE_WORDS}
    if not cleaned:
        return None
    alternatives = "|".join(
        r"\s+".join(re.escape(part) for part in name.split()) for name in sorted(cleaned, key=len, reverse=True)
    )
    return re.compile(rf"(?<![\w@.-])(?:{alternatives})(?![\w-])", _I)


def check(
    *,
    sections: Mapping[str, str],
    factors: Iterable[str] = (),
    people: Iterable[str] = (),
) -> list[LintWarning]:
    """Warnings for the Markdown `sections` (name → text) and the contributing-factor descriptions.

    `people` are the full names and usernames of the portal's users; naming one of them inside a
    contributing factor is a warning (elsewhere, the timeline legitimately says who did what)."""
    warnings: list[LintWarning] = []
    for where, text in sections.items():
        warnings.extend(_scan(text, where))
    names = _names_pattern(people)
    for index, description in enumerate(factors):
        where = f"contributing_factors[{index}]"
        warnings.extend(_scan(description, where))
        if names is not None:
            visible = _blank_quotations(description or "")
            for match in names.finditer(visible):
                phrase = description[match.start() : match.end()]
                warnings.append(
                    LintWarning(PERSON_RULE, phrase, where, _line(description, match.start()), PERSON_SUGGESTION)
                )
    return warnings


def check_as_dicts(**kwargs) -> list[dict[str, object]]:
    return [warning.as_dict() for warning in check(**kwargs)]

"""The blameless-language check: every rule has positive and negative cases. Pure, no database."""

import pytest

from postmortems.blameless import check


def rules(text, where="went_badly", **kwargs):
    return [(w.rule, w.phrase.lower()) for w in check(sections={where: text}, **kwargs)]


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("The engineer should have checked the config.", "should have"),
        ("The deploy failed to notice the drift.", "failed to"),
        ("Someone forgot to renew the certificate.", "forgot to"),
        ("We shouldn't have merged on a Friday.", "shouldn't have"),
        ("It could have been caught in staging.", "could have"),
    ],
)
def test_counterfactual_is_flagged(text, phrase):
    assert rules(text) == [("counterfactual", phrase)]


@pytest.mark.parametrize(
    "text",
    [
        "The rollback should be automated.",
        "The job failed at 10:02 with a timeout.",
        "Renewal is now tracked in the calendar.",
        "We have a checklist that should help.",
    ],
)
def test_counterfactual_negative(text):
    assert rules(text) == []


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("This was human error.", "human error"),
        ("A careless edit broke the config.", "careless"),
        ("It was the deployer's fault.", "fault"),
        ("Nobody is to blame, but...", "to blame"),
        ("Ops blamed the network team.", "blamed"),
    ],
)
def test_blame_label_is_flagged(text, phrase):
    assert rules(text) == [("blame_label", phrase)]


@pytest.mark.parametrize(
    "text",
    [
        "The cluster is fault-tolerant across zones.",
        "We added fault injection to the game day.",
        "A faulty disk was replaced.",
        "The error budget was exhausted.",
    ],
)
def test_blame_label_negative(text):
    assert rules(text) == []


def test_root_cause_suggests_contributing_factors():
    warnings = check(sections={"summary": "The root cause was a full disk.\nAnother root-cause: none."})
    assert [(w.rule, w.line) for w in warnings] == [("root_cause", 1), ("root_cause", 2)]
    assert "contributing factors" in warnings[0].suggestion


def test_root_cause_negative():
    assert rules("Contributing factors: a full disk and no alert on disk usage.", "summary") == []


@pytest.mark.parametrize("text", ["Why didn't anyone page the database team?", "Why did not the alert fire?"])
def test_why_didnt_is_flagged(text):
    assert [rule for rule, _ in rules(text)] == ["why_didnt"]


@pytest.mark.parametrize(
    "text", ["Why did the alert stay silent? The threshold was too high.", "How did it look at 3 AM?"]
)
def test_why_didnt_negative(text):
    assert rules(text) == []


def test_person_named_in_contributing_factor():
    warnings = check(
        sections={},
        factors=["Dana Quill should have checked the config before rollout."],
        people=["Dana Quill", "dquill", "someone"],
    )
    assert [(w.rule, w.phrase, w.where) for w in warnings] == [
        ("counterfactual", "should have", "contributing_factors[0]"),
        ("person_named", "Dana Quill", "contributing_factors[0]"),
    ]
    assert "on-call engineer" in warnings[1].suggestion


def test_person_named_by_username_in_contributing_factor():
    warnings = check(sections={}, factors=["The change by dquill was merged without review."], people=["dquill"])
    assert [(w.rule, w.phrase) for w in warnings] == [("person_named", "dquill")]


def test_person_named_negative_role_words_and_other_sections():
    people = ["Dana Quill", "dquill", "responder", "jo"]
    assert check(sections={}, factors=["The rollback should be automated."], people=people) == []
    assert check(sections={}, factors=["The responder had no runbook for this alert."], people=people) == []
    assert check(sections={}, factors=["The job queue grew."], people=people) == []  # "jo" is too short
    # the timeline may say who did what; only contributing factors are checked for names
    assert check(sections={"timeline": "10:02 Dana Quill rolled back."}, people=people) == []


def test_quotations_and_blockquotes_are_allowed():
    text = (
        'In the channel someone wrote "we should have waited", and the team moved on.\n'
        "> Honestly I forgot to look at the dashboard.\n"
        "The on-call engineer said “this is human error” at first."
    )
    assert rules(text) == []
    factors = ['The page said "ask Dana Quill" as the only escalation.']
    assert check(sections={}, factors=factors, people=["Dana Quill"]) == []


def test_warning_has_phrase_where_line_and_suggestion():
    (warning,) = check(sections={"lessons": "Fine.\nWe failed to test it."})
    assert warning.as_dict() == {
        "rule": "counterfactual",
        "phrase": "failed to",
        "where": "lessons",
        "line": 2,
        "suggestion": warning.suggestion,
    }
    assert warning.suggestion

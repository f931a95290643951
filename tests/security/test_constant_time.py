"""Secrets are compared in constant time: every comparison involving a key, token, secret, signature or
digest in our code goes through hmac.compare_digest, never == or !=."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ["config", "oncall", "incidents", "postmortems", "metrics"]
SECRET_WORDS = ("key", "token", "secret", "signature", "digest", "password")
NOT_SECRETS = {"group_key", "dedupe_key", "kind", "fingerprint", "sort_key", "cache_key"}


def _names(node: ast.AST) -> set[str]:
    names = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            names.add(child.id)
        elif isinstance(child, ast.Attribute):
            names.add(child.attr)
    return names


def _secret(name: str) -> bool:
    lowered = name.lower()
    if lowered == "key" or lowered.endswith("_by_key"):  # dictionary keys, not credentials
        return False
    return lowered not in NOT_SECRETS and any(word in lowered for word in SECRET_WORDS)


def test_no_plain_equality_on_secrets():
    offenders = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Compare) or not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                    continue
                operands = [node.left, *node.comparators]
                if any(isinstance(op, ast.Constant) and op.value in (None, "", 0) for op in operands):
                    continue
                if any(isinstance(op, ast.Constant) for op in operands):
                    continue  # comparing with a literal (a kind, a scheme), not with a secret value
                secret_names = {name for name in _names(node) if _secret(name)}
                if secret_names:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {sorted(secret_names)}")
    assert offenders == []


def test_key_and_token_checks_use_compare_digest():
    for relative in ["incidents/alerting/selectors.py", "metrics/exposition.py"]:
        source = (ROOT / relative).read_text()
        assert "hmac.compare_digest(" in source, relative

"""IAM policy evaluation for the local stack: does this identity's policy allow `action` on `resource`?

A function's identity is its execution role's identity-based policy: the `Policies` statements of the
template, resolved to the ARNs of the bootstrapped resources. Evaluation follows IAM's rules for that
case: an explicit Deny wins, else an Allow that matches both the action and the resource, else the
request is denied (implicit deny). Actions match case-insensitively, resources case-sensitively;
`*` and `?` are wildcards in both (`*` also spans `:` and `/`, as in IAM). `NotAction` and
`NotResource` are honoured. Statements with a `Condition` are not evaluated locally: they never
match (an Allow with a condition grants nothing here), and `Identity.from_policies` reports them.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Mapping

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "allow", "explicit-deny", "implicit-deny"


def access_key_id(stack: str, logical_id: str) -> str:
    """A function's local access key id: stable per stack and function, shaped like Lambda's temporary
    credentials (ASIA + 16 characters), so a re-bootstrap registers the same key again."""
    digest = hashlib.sha256(f"{stack}/{logical_id}".encode()).digest()
    return "ASIA" + base64.b32encode(digest).decode()[:16]


@lru_cache(maxsize=4096)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM globs have only * and ? (no [...] classes as in shell globs).
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(f"(?s:{regex})\\Z", re.IGNORECASE if ignore_case else 0)


def matches(glob: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcard match of `value` against `glob` (`*` any run of characters, `?` one character)."""
    return _pattern(glob, ignore_case).match(value) is not None



def _list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in (value if isinstance(value, list) else [value])]


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" or "Deny"
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    conditional: bool = False

    @classmethod
    def parse(cls, doc: Mapping[str, Any]) -> "Statement":
        return cls(effect=str(doc.get("Effect", "")), actions=tuple(_list(doc.get("Action"))),
                   not_actions=tuple(_list(doc.get("NotAction"))), resources=tuple(_list(doc.get("Resource"))),
                   not_resources=tuple(_list(doc.get("NotResource"))), conditional=bool(doc.get("Condition")))

    def applies(self, action: str, resource: str) -> bool:
        if self.conditional:
            return False
        if self.actions:
            action_ok = any(matches(a, action, ignore_case=True) for a in self.actions)
        else:
            action_ok = bool(self.not_actions) and not any(matches(a, action, True) for a in self.not_actions)
        if not action_ok:
            return False
        if self.resources:
            return any(matches(r, resource) for r in self.resources)
        return bool(self.not_resources) and not any(matches(r, resource) for r in self.not_resources)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Effect": self.effect}
        for key, values in (("Action", self.actions), ("NotAction", self.not_actions),
                            ("Resource", self.resources), ("NotResource", self.not_resources)):
            if values:
                out[key] = list(values)
        if self.conditional:
            out["Condition"] = {"local": "not evaluated"}
        return out


def statements_of(policies: Iterable[Any]) -> tuple[list[Statement], list[str]]:
    """The statements of a function's resolved `Policies` list, and what could not be used.

    Inline policy documents (`{"Statement": [...]}`) are understood; managed policy names and SAM policy
    templates are reported and grant nothing locally (so a missing grant shows up as a denial)."""
    statements: list[Statement] = []
    ignored: list[str] = []
    for policy in policies:
        if isinstance(policy, Mapping) and "Statement" in policy:
            docs = policy["Statement"]
            for doc in docs if isinstance(docs, list) else [docs]:
                statement = Statement.parse(doc)
                if statement.conditional:
                    ignored.append(f"a statement with a Condition ({', '.join(statement.actions)})")
                statements.append(statement)
        else:
            ignored.append(f"policy {policy!r} (only inline policy documents are evaluated locally)")
    return statements, ignored


@dataclass
class Identity:
    """A function's execution role as seen by the emulator: its credentials and its policy."""

    access_key_id: str
    role_arn: str  # arn:aws:iam::{account}:role/{name}
    session_name: str  # the function's name, as Lambda names the role session
    statements: list[Statement] = field(default_factory=list)

    @property
    def principal(self) -> str:
        """The ARN IAM names in a denial: arn:aws:sts::{account}:assumed-role/{role}/{session}."""
        account = self.role_arn.split(":")[4]
        role = self.role_arn.rsplit("/", 1)[-1]
        return f"arn:aws:sts::{account}:assumed-role/{role}/{self.session_name}"

    def decide(self, action: str, resource: str) -> str:
        """ALLOW, EXPLICIT_DENY or IMPLICIT_DENY for one (action, resource) pair."""
        applicable = [s for s in self.statements if s.applies(action, resource)]
        if any(s.effect == "Deny" for s in applicable):
            return EXPLICIT_DENY
        if any(s.effect == "Allow" for s in applicable):
            return ALLOW
        return IMPLICIT_DENY

    def denial(self, action: str, resource: str, decision: str) -> str:
        """IAM's message for a refused call."""
        why = ("with an explicit deny in an identity-based policy" if decision == EXPLICIT_DENY
               else f"because no identity-based policy allows the {action} action")
        return f"User: {self.principal} is not authorized to perform: {action} on resource: {resource} {why}"

    def to_json(self) -> dict[str, Any]:
        return {"accessKeyId": self.access_key_id, "roleArn": self.role_arn, "sessionName": self.session_name,
                "statements": [s.to_json() for s in self.statements]}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "Identity":
        return cls(access_key_id=doc["accessKeyId"], role_arn=doc["roleArn"], session_name=doc["sessionName"],
                   statements=[Statement.parse(s) for s in doc.get("statements") or []])

"""A reply reconciled as one change set, then applied: the model's operations become `ChangeSet` writes.

The model's ``op`` is a proposal. What a write is about (its key, `memlayer._internal.facts`) decides whether it adds
a memory or updates the one holding that fact, several writes of one fact in a reply are one, and what
the user never said, or the developer excluded, is skipped with its reason (`apply_operations`).
"""

from __future__ import annotations

import re
from collections.abc import Set
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timezone
from typing import Any

from ..db.changes import ChangeSet, Fact, memory_key
from ..facts import USER, fact_key, infer_attribute, subject_key
from ..records import Memory
from .dates import mentions_end, mentions_time, parse_point
from .extraction import ExtractionPlan, clean_topics, content_words, final_text, grounded, same_word
from .operations import AddOp, DeleteOp, UpdateOp

__all__ = ["apply_operations"]


@dataclass
class _Write:
    """An add or update of the reply, read into what the store would write."""

    op: AddOp | UpdateOp
    text: str
    topics: list[str]
    fact: Fact
    key: str | None  # the single-valued fact it claims (None: many-valued, or a value of the past)
    target: Memory | None  # the memory it changes; None: a new memory
    ends_old: bool = False  # the target's value stopped holding (a new home), not a wording fixed


def apply_operations(
    changes: ChangeSet,
    plan: ExtractionPlan,
    operations: list[Any],
    stored: set[str],
    holders: dict[str, Memory] | None = None,
) -> list[str]:
    """Turn a validated reply into ``changes``, reconciled as one change set. Returns what was skipped, and why.

    ``stored`` holds the `memory_key` of every add text the user already has; ``holders`` the user's
    current memory of each single-valued fact (`memlayer._internal.facts`), shown to the model or not.
    - The key decides add or update: a new value of a fact the user holds one of (a home, a job) is
      an update of the memory holding it, whatever ``op`` the model wrote; several operations of the
      reply on one such fact are one change (`_pick`). An update whose key says it is another fact
      (another attribute, another person) than its target is an add: it never overwrites a true fact.
    - What the developer's instructions exclude (`memlayer._internal.facts.typed_instructions`) is skipped.
    - As before: an add of a fact already stored (the same text, or one whose words a shown memory or
      this reply's other writes hold), an add or update not grounded in what the user said
      (`grounded`), an update that changes nothing, a delete of a memory none of whose words the user
      said ("bye" does not retract a job). English relative dates in a text become dates first.
    Updates and deletes apply in the reply's order (one on an alias already deleted is skipped; a delete
    of a memory this reply updated is skipped: the update replaced it), then adds.
    """
    current: dict[str, Memory | None] = dict(plan.aliases)
    skipped: list[str] = []
    said = content_words(plan.user_text)
    deleted = {m.memory_id for op in operations if isinstance(op, DeleteOp) and (m := current[op.target]) is not None}
    live = {key: m for key, m in (holders or {}).items() if m.memory_id not in deleted}
    writes = [w for op in operations if isinstance(op, (AddOp, UpdateOp)) if (w := _read(op, plan, current, skipped))]
    facts = [w for w in writes if not _no_fact(w.text)]
    if len(facts) == 1:
        _date_from_conversation(facts[0], plan)
    writes = _reconcile(writes, live, skipped, replace_held="update" in plan.allowed)
    seen = set(stored)
    updates = {id(w.op): w for w in writes if w.target is not None}
    for op in operations:  # deletes, and the writes that update a memory (after reconciling), in order
        if isinstance(op, DeleteOp) and _updated(changes, plan.aliases[op.target]):
            # "update m1" then "delete m1": a small model's way to say the update replaced the old value.
            skipped.append(f"delete {op.target}: replaced by this reply's update")
        elif isinstance(op, DeleteOp):
            _apply_delete(changes, op, current, said, skipped)
        elif id(op) in updates:
            _apply_update(changes, updates[id(op)], current, plan.aliases, said, seen, skipped)
    for w in writes:
        if w.target is None:
            _apply_add(changes, w, current, said, seen, skipped)
    return skipped


def _read(
    op: AddOp | UpdateOp, plan: ExtractionPlan, current: dict[str, Memory | None], skipped: list[str]
) -> _Write | None:
    fact = _fact(op, plan)
    attribute = fact.attribute
    if (plan.capture is not None and attribute not in plan.capture) or attribute in plan.ignore:
        skipped.append(f"{op.op}: outside the developer's instructions ({attribute}): {op.memory}")
        return None
    text, target = final_text(op, plan), None
    if isinstance(op, UpdateOp):
        target = current[op.target]
        if target is None:
            skipped.append(f"update {op.target}: already deleted in this reply")
            return None
    if target is not None and fact.attribute == "other" and fact.subject == USER:
        fact = replace(fact, subject=target.subject, attribute=target.attribute)  # no key given: the target's
    if target is not None and (_another_fact(target, fact) or not _replaces(target, fact, text, plan.user_text)):
        target = None  # "update" used for a new fact about something else: stored beside it
    topics = clean_topics(op.topics) or (target.topics if target else ([attribute] if attribute != "other" else []))
    learned = plan.learned_at or datetime.now(timezone.utc)
    past = fact.held_until is not None and fact.held_until <= learned
    return _Write(op, text, topics, fact, None if past else fact_key(fact.subject, fact.attribute), target)


def _fact(op: AddOp | UpdateOp, plan: ExtractionPlan) -> Fact:
    """The key and the event times of a write: ``since`` / ``until`` as the model gave them, resolved
    against the conversation's date; without either, a fact holds from the conversation that stated it."""
    since = until = None
    if mentions_time(plan.user_text):  # a time the user never mentioned is the model's invention
        since = parse_point(op.since or _said_time(_SINCE, op.memory), plan.today)
        if mentions_end(plan.user_text):  # and an end the user never spoke of is a date misplaced
            until = parse_point(op.until or _said_time(_UNTIL, op.memory), plan.today)
    if since is None and until is None:
        since = plan.today
    subject = USER if subject_key(op.subject) == USER else op.subject.strip()
    # Unmistakable English ("Works as ...", "Allergic to ...") overrules the model's attribute: a small
    # model files a job under home or an allergy under diet, and a wrong single-valued key would replace
    # a true fact. Other phrasings and languages keep the model's.
    said = infer_attribute(op.memory) if subject == USER else "other"
    return Fact(subject, said if said != "other" else op.attribute, _midnight(since), _midnight(until))


# A small model writes "Lived in Rome until 2020" and leaves ``until`` empty: English time words in the
# text fill the fields it left (a year, a month, an ISO date), as relative dates are resolved in code.
_MONTH = "january|february|march|april|may|june|july|august|september|october|november|december"
_MONTH += "|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec"
_TIME = rf"(\d{{4}}(?:-\d{{2}}){{0,2}}|(?i:{_MONTH})\.?(?:\s+\d{{4}})?)(?!\w)"
_SINCE = re.compile(rf"\b(?i:since|from|starting)\s+(?:in\s+)?{_TIME}")
_UNTIL = re.compile(rf"\b(?i:until|till|to|through)\s+(?:in\s+)?{_TIME}")


_STARTED = re.compile(rf"\b(?i:since|in|from|back in)\s+{_TIME}")
_AGO = re.compile(r"\b(?i:last (?:month|year|week)|\w+ (?:years?|months?|weeks?) ago)\b")


def _date_from_conversation(write: _Write, plan: ExtractionPlan) -> None:
    """A reply with one fact and no time of its own: the conversation's own "in March", "since 2019",
    "last month" says when it started (the one fact is what it is about). The fact's start otherwise
    stays the conversation's date."""
    if plan.today is None or write.fact.held_from != _midnight(plan.today) or write.fact.held_until is not None:
        return  # a time of its own (given, or in its text), or no date to count from
    phrase = _said_time(_STARTED, plan.user_text) or next(iter(_AGO.findall(plan.user_text)), None)
    start = parse_point(phrase, plan.today)
    if start is not None and start <= plan.today:
        write.fact = replace(write.fact, held_from=_midnight(start))


def _said_time(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match[1] if match else None


def _midnight(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), tzinfo=timezone.utc)


def _replaces(target: Memory, fact: Fact, text: str, user_text: str) -> bool:
    """Whether an update may replace ``target``: it is the same single-valued fact (a new home for the home),
    or the new text shares a word with it ("Drinks green tea" for "Drinks coffee"), or the user named it
    ("I don't do yoga any more"). Otherwise a small model's "update" is a new fact (a hobby written over
    "Is learning Rust"), and replacing would destroy a true one."""
    key = fact_key(fact.subject, fact.attribute)
    if key is not None and key == fact_key(target.subject, target.attribute):
        return True
    old, said = content_words(target.memory), content_words(user_text)
    return any(same_word(a, b) for a in old for b in content_words(text)) or _mentioned(target.memory, said)


def _another_fact(target: Memory, fact: Fact) -> bool:
    """Whether a write keyed ``fact`` is about something else than ``target`` (an unknown key is no evidence)."""
    if subject_key(target.subject) != subject_key(fact.subject):
        return True
    return "other" not in (target.attribute, fact.attribute) and target.attribute != fact.attribute


def _reconcile(
    writes: list[_Write], holders: dict[str, Memory], skipped: list[str], *, replace_held: bool = True
) -> list[_Write]:
    """One write per single-valued fact, applied to the memory that holds it (if the user has one).

    Where the developer allowed no updates (Agno's ``update_memories=False``), a new value is stored beside
    the held one, keyless (attribute "other"), so the store's one-value rule still holds."""
    groups: dict[str, list[_Write]] = {}
    for w in writes:
        if w.key is not None:
            groups.setdefault(w.key, []).append(w)
    dropped: set[int] = set()
    for key, group in groups.items():
        held = holders.get(key)
        holder = (held if replace_held else None) or next((w.target for w in group if w.target is not None), None)
        chosen = _pick(group, holder)
        for w in group:
            if w is not chosen:
                dropped.add(id(w))
                skipped.append(f"{w.op.op}: the same fact ({key}) as {chosen.text!r} in this reply: {w.text}")
        if holder is not None:
            chosen.target, chosen.ends_old = holder, True
        elif held is not None:
            chosen.fact, chosen.key = replace(chosen.fact, attribute="other"), None
    return [w for w in writes if id(w) not in dropped]


def _pick(group: list[_Write], holder: Memory | None) -> _Write:
    """The write that best states a single-valued fact's new value: the one that least repeats the old
    value's own words ("Lives in Lisbon", not "Moved from Berlin to Lisbon"), then an update, then the shortest.

    A word of the old text weighs by how few of the writes repeat it: "Berlin" in one of three counts
    more than "lives" in two of three, which is the attribute's wording, not its old value.
    """
    if len(group) == 1:
        return group[0]
    old = content_words(holder.memory) if holder is not None else frozenset()
    words = [content_words(w.text) for w in group]

    def rank(i: int) -> tuple[float, int, int]:
        repeated = sum(1 - sum(word in other for other in words) / len(group) for word in old & words[i])
        return repeated, 0 if isinstance(group[i].op, UpdateOp) else 1, len(group[i].text)

    return group[min(range(len(group)), key=rank)]


def _updated(changes: ChangeSet, memory: Memory | None) -> bool:
    return memory is not None and any(
        c.operation == "update" and c.memory_id == memory.memory_id for c in changes.changes
    )


def _apply_delete(
    changes: ChangeSet, op: DeleteOp, current: dict[str, Memory | None], said: Set[str], skipped: list[str]
) -> None:
    old = current[op.target]
    if old is None:
        skipped.append(f"delete {op.target}: already deleted in this reply")
    elif said and not _mentioned(old.memory, said):
        skipped.append(f"delete {op.target}: the user did not mention it: {old.memory}")
    else:
        changes.delete(old, op.reason)
        current[op.target] = None


def _apply_update(
    changes: ChangeSet, w: _Write, current: dict[str, Memory | None], shown: dict[str, Memory], said: Set[str],
    seen: set[str], skipped: list[str],
) -> None:  # fmt: skip
    assert w.target is not None
    alias, old = _state(current, shown, w.target)
    label = f"update {alias}"
    if old is None:
        skipped.append(f"{label}: already deleted in this reply")
    elif w.text == old.memory and w.topics == old.topics:
        skipped.append(f"{label}: no change")
    elif isinstance(w.op, AddOp) and content_words(w.text) <= content_words(old.memory):
        skipped.append(f"add: already stored: {w.text}")  # the memory holding the fact already says it
    elif not grounded(w.text, said):
        skipped.append(f"{label}: not said by the user: {w.text}")
    elif memory_key(w.text) in _keys_besides(old, current, seen):
        changes.delete(old, f"merged into the stored {w.text!r}")
        current[alias] = None
    else:
        seen.add(memory_key(w.text))
        current[alias] = changes.update(old, w.text, w.topics, w.op.reason, w.fact, ends_old=w.ends_old)


def _state(current: dict[str, Memory | None], shown: dict[str, Memory], target: Memory) -> tuple[str, Memory | None]:
    """A memory's alias and its state in this reply so far (updated already, or deleted: None).

    Found by its id, which its versions keep, among the memories the model was shown; one it was not
    shown (the memory holding a fact) enters under its id.
    """
    for alias, memory in shown.items():
        if memory.memory_id == target.memory_id:
            return alias, current[alias]
    return target.memory_id, current.setdefault(target.memory_id, target)


def _apply_add(
    changes: ChangeSet, w: _Write, current: dict[str, Memory | None], said: Set[str], seen: set[str],
    skipped: list[str],
) -> None:  # fmt: skip
    why = _skip_add(w.text, seen, said, [m.memory for m in current.values() if m is not None])
    if why:
        skipped.append(f"add: {why}: {w.text}")
        return
    seen.add(memory_key(w.text))
    new = changes.add(w.text, w.topics, w.op.reason, w.fact)
    current[new.memory_id] = new  # this reply's adds count as shown for the adds after them


def _keys_besides(old: Memory, current: dict[str, Memory | None], seen: set[str]) -> set[str]:
    """The texts the user holds besides ``old``: the other shown memories, and this reply's adds."""
    shown = {memory_key(m.memory) for m in current.values() if m is not None and m.memory_id != old.memory_id}
    return shown | (seen - {memory_key(old.memory)})


def _skip_add(text: str, seen: set[str], said: Set[str], shown: list[str]) -> str | None:
    if memory_key(text) in seen:
        return "already stored"
    if not grounded(text, said):
        return "not said by the user"
    words = content_words(text)
    if words and any(words <= content_words(memory) for memory in shown):
        return "already stored"
    if _no_fact(text):
        return "no fact in it"
    return None


def _no_fact(text: str) -> bool:
    """ "Five years", "25": a number or a span torn from its fact."""
    return all(w.isdigit() or w in _DURATION_WORDS for w in content_words(text))


_DURATION_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve a few several many "
    "year years month months week weeks day days hour hours ago now today since".split()
)


def _mentioned(memory: str, said: Set[str]) -> bool:
    # "Forget where I live" names "Lives in Lisbon"; "I eat everything now" does not, and a small
    # model that deletes the city there destroys a true fact.
    return any(same_word(w, s) for w in content_words(memory) if not w.isdigit() for s in said)

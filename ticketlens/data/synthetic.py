"""Built-in synthetic tasks: no download, and known ground truth for attribution.

Every example records its *evidence*: the ``(segment, word index)`` positions of the words that
decide its label, so attribution can be scored against the truth.

- ``sentiment``: one or two clauses joined by "but"; the last clause decides. A clause's
  polarity is its adjective's, flipped by a negator ("not", "never"); intensifiers and neutral
  distractor clauses carry no signal. Evidence: the deciding adjective and its negator.
- ``agreement``: is the sentence grammatical? The verb must agree in number with the head
  noun of the subject across prepositional phrases and relative clauses holding attractor
  nouns, often of the other number (Linzen et al. 2016). Evidence: subject noun and verb.
- ``paraphrase`` (sentence pair): does the second sentence (active or passive voice) describe
  the same event as the first? Negatives swap the roles (hard), or change the verb or a noun.
  Evidence: agent, verb and patient in both sentences.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

POSITIVE = ("good great excellent wonderful brilliant superb delightful charming enjoyable "
            "fantastic moving clever").split()
NEGATIVE = "bad awful terrible boring dull poor horrible weak tedious clumsy bland messy".split()
NEUTRAL = "long short new old french loud quiet recent slow simple".split()
INTENSIFIERS = "very really quite extremely truly rather so".split()
NEGATORS = ("not", "never")
FILM_NOUNS = "movie film plot acting story script ending cast music director score dialogue".split()
COPULAS = "was is seemed felt".split()
PREFIXES = (("honestly", ","), ("overall", ","), ("i", "think"), ("to", "be", "honest", ","))

NOUNS = [("key", "keys"), ("author", "authors"), ("dog", "dogs"), ("teacher", "teachers"),
         ("painting", "paintings"), ("friend", "friends"), ("picture", "pictures"),
         ("boy", "boys"), ("girl", "girls"), ("car", "cars"), ("house", "houses"),
         ("cabinet", "cabinets"), ("table", "tables"), ("student", "students"),
         ("senator", "senators"), ("window", "windows")]
VERBS = [("is", "are", "adj"), ("was", "were", "adj"), ("seems", "seem", "adj"),
         ("has", "have", "part"), ("looks", "look", "adj")]
AGR_ADJ = "red old new large small broken ready famous".split()
PARTICIPLES = "arrived changed gone vanished".split()
PREPS = "to near of behind beside with".split()
REL_VERBS = "liked saw knew painted".split()

AGENTS = "cat dog man woman child teacher doctor farmer bird horse".split()
TRANSITIVE = "chased helped followed pushed called visited watched kicked greeted painted".split()
PAIR_ADJ = "old young small big".split()


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    text_pair: str | None = None
    evidence: tuple[tuple[int, int], ...] = ()  # (segment, word index)


@dataclass(frozen=True)
class SyntheticTask:
    name: str
    label_names: tuple[str, ...]
    is_pair: bool
    make: Callable[[random.Random], Example]
    description: str


# --------------------------------------------------------------------------- sentiment
def _sentiment_clause(rng: random.Random, words: list[str]) -> tuple[int, list[int]]:
    """Appends a clause to ``words``; returns (polarity, evidence word indices)."""
    words += ["the", rng.choice(FILM_NOUNS), rng.choice(COPULAS)]
    evidence = []
    negated = rng.random() < 0.4
    if negated:
        evidence.append(len(words))
        words.append(rng.choice(NEGATORS))
    if rng.random() < 0.4:
        words.append(rng.choice(INTENSIFIERS))
    positive = rng.random() < 0.5
    evidence.append(len(words))
    words.append(rng.choice(POSITIVE if positive else NEGATIVE))
    return int(positive != negated), evidence


def make_sentiment(rng: random.Random) -> Example:
    words: list[str] = []
    if rng.random() < 0.2:
        words += list(rng.choice(PREFIXES))
    label, evidence = _sentiment_clause(rng, words)
    if rng.random() < 0.4:
        words.append("but")
        label, evidence = _sentiment_clause(rng, words)
    if rng.random() < 0.3:  # a distractor clause with a neutral adjective
        words += ["and", "the", rng.choice(FILM_NOUNS), rng.choice(COPULAS), rng.choice(NEUTRAL)]
    return Example(" ".join(words), label, evidence=tuple((0, i) for i in evidence))


# --------------------------------------------------------------------------- agreement
def make_agreement(rng: random.Random) -> Example:
    subj_plural = rng.random() < 0.5
    subj = rng.choice(NOUNS)[int(subj_plural)]
    words = ["the", subj]
    subj_at = 1
    for _ in range(rng.choice((0, 1, 1, 2))):  # attractors, mostly of the other number
        attractor_plural = (not subj_plural) if rng.random() < 0.7 else subj_plural
        noun = rng.choice(NOUNS)[int(attractor_plural)]
        if rng.random() < 0.7:
            words += [rng.choice(PREPS), "the", noun]
        else:
            words += ["that", "the", noun, rng.choice(REL_VERBS)]
    grammatical = rng.random() < 0.5
    sing, plur, kind = rng.choice(VERBS)
    verb_plural = subj_plural if grammatical else not subj_plural
    verb_at = len(words)
    words.append(plur if verb_plural else sing)
    words.append(rng.choice(AGR_ADJ if kind == "adj" else PARTICIPLES))
    return Example(" ".join(words), int(grammatical), evidence=((0, subj_at), (0, verb_at)))


# --------------------------------------------------------------------------- paraphrase
def _np(rng: random.Random, noun: str) -> list[str]:
    return ["the", rng.choice(PAIR_ADJ), noun] if rng.random() < 0.3 else ["the", noun]


def make_paraphrase(rng: random.Random) -> Example:
    agent, patient = rng.sample(AGENTS, 2)
    verb = rng.choice(TRANSITIVE)
    a_agent, a_patient = _np(rng, agent), _np(rng, patient)
    a = [*a_agent, verb, *a_patient]
    a_ev = [len(a_agent) - 1, len(a_agent), len(a_agent) + len(a_patient)]

    label = int(rng.random() < 0.5)
    b_agent, b_verb, b_patient = agent, verb, patient
    if not label:
        r = rng.random()
        if r < 0.5:
            b_agent, b_patient = patient, agent  # roles swapped: same words, other event
        elif r < 0.75:
            b_verb = rng.choice([v for v in TRANSITIVE if v != verb])
        else:
            b_patient = rng.choice([n for n in AGENTS if n not in (agent, patient)])
    ag, pa = _np(rng, b_agent), _np(rng, b_patient)
    if rng.random() < 0.5:  # active
        b = [*ag, b_verb, *pa]
        b_ev = [len(ag) - 1, len(ag), len(ag) + len(pa)]
    else:  # passive: "the patient was verb by the agent"
        b = [*pa, "was", b_verb, "by", *ag]
        b_ev = [len(pa) - 1, len(pa) + 1, len(pa) + 3 + len(ag) - 1]
    evidence = tuple((0, i) for i in a_ev) + tuple((1, i) for i in b_ev)
    return Example(" ".join(a), label, " ".join(b), evidence)


TASKS: dict[str, SyntheticTask] = {
    "sentiment": SyntheticTask("sentiment", ("negative", "positive"), False, make_sentiment,
                               "polarity words, intensifiers and negation; last clause decides"),
    "agreement": SyntheticTask("agreement", ("ungrammatical", "grammatical"), False,
                               make_agreement, "subject-verb number agreement across attractors"),
    "paraphrase": SyntheticTask("paraphrase", ("different", "same"), True, make_paraphrase,
                                "sentence pairs: same event in active or passive voice?"),
}

DEFAULT_SIZES = {"train": 4000, "dev": 1000}


def generate(name: str, n: int, seed: int) -> list[Example]:
    """``n`` examples of task ``name``, a pure function of ``(name, n, seed)``."""
    task = TASKS[name]
    rng = random.Random(f"{name}:{seed}")
    return [task.make(rng) for _ in range(n)]


def vocabulary() -> list[str]:
    """Every word any built-in task can produce, sorted (so ids are stable)."""
    words = set(POSITIVE + NEGATIVE + NEUTRAL + INTENSIFIERS + FILM_NOUNS + COPULAS
                + AGR_ADJ + PARTICIPLES + PREPS + REL_VERBS + AGENTS + TRANSITIVE + PAIR_ADJ)
    words |= set(NEGATORS) | {w for p in PREFIXES for w in p} | {w for pair in NOUNS for w in pair}
    words |= {w for s, p, _ in VERBS for w in (s, p)}
    words |= {"the", "but", "and", "that", "was", "by"}
    return sorted(words)

"""The simplicity detector: a score in [0, 1] (1 = simple), a route, a tier and reasons."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from crewchief.simplicity._features import analyse, char_grams
from crewchief.simplicity._model import LinearModel, shipped_model
from crewchief.simplicity._signals import Prepared, Signals

if TYPE_CHECKING:
    from crewchief.state import RouteDecision

Route = Literal["fast", "plan"]
Tier = Literal["fast", "balanced", "deep"]
TIERS: tuple[Tier, ...] = ("fast", "balanced", "deep")
DEFAULT_THRESHOLD = 0.7
DEFAULT_DEEP_BELOW = 0.3
_MAX_SIGNAL_REASONS = 4
_MIN_SHARE = 0.25  # a signal needs this much weight (in log-odds) to be named

_LABELS: dict[str, str] = {
    "polite_order": "polite form of an order",
    "polite_explain": "polite request for an explanation",
    "order_first": "starts with an order",
    "explain_first": "starts by asking for an explanation",
    "question_form": "phrased as a question",
    "mentions_work": "names work to do",
    "several_actions": "several actions",
    "mentions_explain": "asks to explain, compare or convert",
    "one_shot_output": "asks for one short piece of output",
    "points_at_system": "points at existing code",
    "system_words": "mentions parts of a system",
    "wide_scope": "wide scope",
    "several_steps": "several steps",
    "greeting": "greeting or thanks",
    "help_or_status": "help or status request",
    "small_talk": "small talk",
    "ask_is_question": "the last sentence asks a question",
    "ask_is_order": "the last sentence gives an order",
    "ends_with_question_mark": "ends with a question mark",
    "pasted_context": "pasted context",
    "context_then_question": "pasted context, then a question",
    "names_files": "names files",
    "names_tickets": "names tickets",
}


@dataclass(frozen=True, slots=True)
class Decision:
    """What the detector decided for one request."""

    score: float
    route: Route
    tier: Tier
    reasons: list[str] = field(default_factory=list)
    forced: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_route(self) -> RouteDecision:
        """The decision as the graph input carries it."""
        return {
            "route": self.route,
            "score": self.score,
            "tier": self.tier,
            "reasons": list(self.reasons),
            "forced": self.forced,
        }


def _label(name: str, detail: str, n_words: int) -> str:
    if name.startswith("len_"):
        n = n_words
        words = "1 word" if n == 1 else f"{n} words"
        text = (
            f"short ({words})" if n <= 12 else f"long ({words})" if n > 80 else f"length: {words}"
        )
    else:
        text = _LABELS.get(name, name.replace("_", " "))
        if detail:
            text = f"{text}: {detail}"
    return text


def _signal_shares(s: Signals, contrib: dict[str, float]) -> dict[str, float]:
    """Each fired signal's weight: its own feature plus half of every pair it is in."""
    shares = dict.fromkeys(s.fired, 0.0)
    for key, value in contrib.items():
        if not key.startswith("s:"):
            continue
        parts = key[2:].split("&")
        for part in parts:
            if part in shares:
                shares[part] += value / len(parts)
    return shares


def _word_shares(p: Prepared, contrib: dict[str, float]) -> dict[str, float]:
    """Weight of each prose word: its unigram, half its word pairs, and its n-grams."""
    shares: dict[str, float] = {}
    for word in dict.fromkeys(p.words):
        total = contrib.get(f"w:{word}", 0.0)
        grams = char_grams(word)
        total += sum(contrib.get(f"c:{g}", 0.0) for g in grams) / max(1, len(p.words))
        shares[word] = total
    for key, value in contrib.items():
        if key.startswith("b:"):
            for word in key[2:].split(" "):
                if word in shares:
                    shares[word] += value / 2
    return shares


# Function words carry weight in the model but explain nothing to a reader.
_STOPWORDS = frozenset(
    """
    the and for you your our with this that from into onto are was were can could would
    will please just also some any all its it's not but about what's there here them they
    then than out off over under via per yes let's lets
    los las una por para con que del como sus nos este esta
    les des une pour avec dans sur est pas que qui vous nous tu
    der die das und mit fur ist ein eine den dem von auf bitte mal
    codespan quotespan
    """.split()
)


def _is_cue(word: str) -> bool:
    return len(word) >= 3 and word not in _STOPWORDS and not word.isdigit()


def explain(p: Prepared, s: Signals, contrib: dict[str, float]) -> list[str]:
    """Readable reasons, strongest first, each marked with the route it pushes toward."""
    shares = _signal_shares(s, contrib)
    ranked = sorted(shares.items(), key=lambda kv: -abs(kv[1]))
    reasons = [
        f"{_label(name, s.fired[name], p.prose_words)} (→ {'fast' if share > 0 else 'plan'})"
        for name, share in ranked[:_MAX_SIGNAL_REASONS]
        if abs(share) >= _MIN_SHARE
    ]
    words = sorted(
        ((w, v) for w, v in _word_shares(p, contrib).items() if _is_cue(w)),
        key=lambda kv: -abs(kv[1]),
    )
    cues = [f"'{w}' → {'fast' if v > 0 else 'plan'}" for w, v in words[:3] if abs(v) >= _MIN_SHARE]
    if cues:
        reasons.append("wording: " + ", ".join(cues))
    return reasons or ["no strong signal"]


class SimplicityDetector:
    """Scores requests and maps the score to a route and a tier.

    Args:
        threshold: Score at or above which a request takes the fast path.
        deep_below: Score below which a planned request gets the ``deep`` tier
            (between the two it is ``balanced``).
        model: The learned model (default: the one that ships with crewchief).
    """

    def __init__(
        self,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        deep_below: float = DEFAULT_DEEP_BELOW,
        model: LinearModel | None = None,
    ) -> None:
        for name, value in (("threshold", threshold), ("deep_below", deep_below)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
        self.threshold = threshold
        self.deep_below = deep_below
        self.model = model or shipped_model()

    def _score(self, feats: dict[str, float]) -> float:
        return round(self.model.probability(self.model.margin(feats)), 4)

    def score(self, text: str) -> float:
        """The probability that one model call answers ``text`` well (1 = simple)."""
        return self._score(analyse(text)[2])

    def tier_for(self, score: float, route: Route) -> Tier:
        if route == "fast":
            return "fast"
        # A threshold set below deep_below leaves no room for "balanced"; deep still needs
        # the score under both.
        return "deep" if score < min(self.deep_below, self.threshold) else "balanced"

    def decide(self, text: str, *, force: Route | None = None, explained: bool = True) -> Decision:
        """Score ``text`` and decide; ``force`` overrides the route and is recorded.

        ``explained=False`` leaves the reasons out (about half the time of a decision),
        for callers that only want the score, route and tier.
        """
        if force not in (None, "fast", "plan"):
            raise ValueError(f"route: expected 'fast' or 'plan', got {force!r}")
        p, s, feats = analyse(text)
        score = self._score(feats)
        route: Route = force or ("fast" if score >= self.threshold else "plan")
        reasons = explain(p, s, self.model.contributions(feats)) if explained else []
        return Decision(
            score=score,
            route=route,
            tier=self.tier_for(score, route),
            reasons=reasons,
            forced=force is not None,
        )


def decide(
    text: str, *, threshold: float = DEFAULT_THRESHOLD, force: Route | None = None
) -> Decision:
    """Decide one request with the shipped model (see :class:`SimplicityDetector`)."""
    return SimplicityDetector(threshold=threshold).decide(text, force=force)


async def load_detector(
    *, threshold: float = DEFAULT_THRESHOLD, deep_below: float = DEFAULT_DEEP_BELOW
) -> SimplicityDetector:
    """A detector for async callers: the shipped model is read once, off the event loop."""
    import asyncio

    from crewchief.simplicity._model import shipped_model_loaded

    model = shipped_model() if shipped_model_loaded() else await asyncio.to_thread(shipped_model)
    return SimplicityDetector(threshold=threshold, deep_below=deep_below, model=model)

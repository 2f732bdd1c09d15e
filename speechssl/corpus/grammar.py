"""Sentences for the synthetic mini corpus: general sentences, spoken commands with intents
(the action/object/location scheme of Fluent Speech Commands) and keyword utterances (the
ten keywords of Speech Commands v0.01 plus its "unknown" words).

Everything is drawn from a ``random.Random`` so a seed fixes the corpus.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import List, Optional, Tuple

KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
UNKNOWN_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "bed",
    "bird",
    "cat",
    "dog",
    "happy",
    "house",
    "marvin",
    "sheila",
    "tree",
    "wow",
]

NAMES = [
    "anna",
    "peter",
    "maria",
    "james",
    "linda",
    "robert",
    "susan",
    "david",
    "karen",
    "thomas",
    "laura",
    "daniel",
    "emily",
    "george",
    "helen",
    "oliver",
    "sophie",
    "victor",
    "nora",
    "samuel",
    "clara",
    "martin",
    "alice",
    "edward",
    "grace",
    "henry",
    "julia",
]
NOUNS = [
    "dog",
    "cat",
    "horse",
    "teacher",
    "doctor",
    "farmer",
    "painter",
    "sailor",
    "child",
    "garden",
    "river",
    "mountain",
    "village",
    "market",
    "kitchen",
    "window",
    "table",
    "letter",
    "story",
    "song",
    "bridge",
    "forest",
    "island",
    "road",
    "train",
    "ship",
    "castle",
    "library",
    "school",
    "basket",
    "bottle",
    "candle",
    "carpet",
    "clock",
    "coat",
    "cup",
    "door",
    "engine",
    "feather",
    "flower",
    "glass",
    "hammer",
    "jacket",
    "key",
    "lamp",
    "map",
    "mirror",
    "needle",
    "orange",
    "pencil",
    "picture",
    "pillow",
    "rabbit",
    "ribbon",
    "rope",
    "saddle",
    "shadow",
    "shelf",
    "shoe",
    "spoon",
    "stone",
    "storm",
    "sugar",
    "tower",
    "wagon",
    "wheel",
    "whistle",
    "winter",
    "summer",
    "morning",
    "evening",
    "question",
    "answer",
    "message",
    "journey",
    "harbor",
    "meadow",
    "valley",
    "cottage",
    "kettle",
    "lantern",
    "blanket",
    "wallet",
    "ticket",
    "camera",
    "violin",
    "piano",
    "guitar",
    "drum",
    "painting",
    "novel",
    "poem",
    "dinner",
    "breakfast",
    "sandwich",
    "apple",
    "cherry",
    "lemon",
    "potato",
    "tomato",
    "onion",
    "butter",
    "cheese",
    "bread",
    "coffee",
    "water",
    "milk",
    "soup",
    "chair",
    "bench",
    "fence",
    "gate",
    "roof",
    "wall",
    "floor",
    "ceiling",
    "stairs",
    "chimney",
    "pocket",
    "button",
]
ADJECTIVES = [
    "old",
    "young",
    "small",
    "large",
    "quiet",
    "noisy",
    "bright",
    "dark",
    "warm",
    "cold",
    "heavy",
    "light",
    "gentle",
    "clever",
    "brave",
    "lazy",
    "busy",
    "happy",
    "sad",
    "careful",
    "strange",
    "famous",
    "simple",
    "narrow",
    "wide",
    "deep",
    "shallow",
    "golden",
    "silver",
    "wooden",
    "broken",
    "empty",
    "crowded",
    "quick",
    "slow",
    "tall",
    "short",
    "sharp",
    "smooth",
    "rough",
    "soft",
    "hard",
    "fresh",
    "ancient",
    "modern",
    "distant",
    "nearby",
    "hidden",
    "open",
    "clean",
    "dirty",
    "green",
    "blue",
    "red",
    "yellow",
    "purple",
    "white",
    "black",
    "brown",
    "gray",
]
VERBS_PAST = [
    "found",
    "lost",
    "carried",
    "painted",
    "watched",
    "followed",
    "opened",
    "closed",
    "cleaned",
    "fixed",
    "visited",
    "crossed",
    "remembered",
    "forgot",
    "noticed",
    "described",
    "borrowed",
    "returned",
    "built",
    "bought",
    "sold",
    "wrote",
    "read",
    "heard",
    "saw",
    "liked",
    "moved",
    "pushed",
    "pulled",
    "washed",
    "dropped",
    "lifted",
    "covered",
    "measured",
    "counted",
    "collected",
    "delivered",
    "ordered",
    "prepared",
    "repaired",
    "showed",
    "studied",
    "touched",
    "wanted",
    "hid",
    "chose",
]
VERBS_INTRANS = [
    "arrived",
    "waited",
    "laughed",
    "smiled",
    "listened",
    "worked",
    "walked",
    "slept",
    "travelled",
    "danced",
    "sang",
    "shouted",
    "whispered",
    "paused",
    "rested",
    "hurried",
    "wondered",
    "returned",
    "stayed",
    "left",
]
ADVERBS = [
    "slowly",
    "quickly",
    "quietly",
    "loudly",
    "carefully",
    "suddenly",
    "finally",
    "happily",
    "sadly",
    "early",
    "late",
    "again",
    "together",
    "often",
    "rarely",
    "gently",
    "bravely",
    "calmly",
    "eagerly",
    "patiently",
]
PLACES = [
    "near the river",
    "by the window",
    "under the bridge",
    "behind the house",
    "across the valley",
    "in the garden",
    "at the market",
    "on the mountain",
    "inside the castle",
    "beside the road",
    "along the harbor",
    "through the forest",
    "in the village",
    "at the station",
    "after dinner",
    "before breakfast",
    "during the storm",
    "in the morning",
    "in the evening",
    "on the island",
]
TIMES = [
    "yesterday",
    "last week",
    "this morning",
    "every day",
    "in the spring",
    "last summer",
    "on sunday",
    "at night",
    "at noon",
    "some years ago",
]
DETS = ["the", "a", "that", "this", "every", "my", "her", "his", "our", "their"]

# Fluent Speech Commands: the 31 intents (action, object, location).
_LOCATIONS = ["none", "kitchen", "bedroom", "washroom"]
INTENTS: List[Tuple[str, str, str]] = (
    [("activate", "lights", loc) for loc in _LOCATIONS]
    + [("activate", "music", "none"), ("activate", "lamp", "none")]
    + [("deactivate", "lights", loc) for loc in _LOCATIONS]
    + [("deactivate", "music", "none"), ("deactivate", "lamp", "none")]
    + [("increase", "volume", "none")]
    + [("increase", "heat", loc) for loc in _LOCATIONS]
    + [("decrease", "volume", "none")]
    + [("decrease", "heat", loc) for loc in _LOCATIONS]
    + [("change language", obj, "none") for obj in ["none", "Chinese", "Korean", "English", "German"]]
    + [("bring", obj, "none") for obj in ["newspaper", "socks", "shoes", "juice"]]
)

_ACTION_PHRASES = {
    ("activate", "lights"): [
        "turn on the lights{in}",
        "switch on the lights{in}",
        "lights on{in}",
        "turn the lights on{in}",
        "{loc_adj}lights on",
    ],
    ("deactivate", "lights"): [
        "turn off the lights{in}",
        "switch off the lights{in}",
        "lights off{in}",
        "turn the lights off{in}",
        "{loc_adj}lights off",
    ],
    ("activate", "music"): ["play the music", "turn on the music", "start the music", "put some music on"],
    ("deactivate", "music"): ["stop the music", "turn off the music", "pause the music", "switch the music off"],
    ("activate", "lamp"): ["turn on the lamp", "switch on the lamp", "lamp on"],
    ("deactivate", "lamp"): ["turn off the lamp", "switch off the lamp", "lamp off"],
    ("increase", "volume"): [
        "turn up the volume",
        "increase the volume",
        "make it louder",
        "louder please",
        "volume up",
    ],
    ("decrease", "volume"): [
        "turn down the volume",
        "decrease the volume",
        "make it quieter",
        "too loud",
        "volume down",
    ],
    ("increase", "heat"): [
        "turn up the heat{in}",
        "increase the heating{in}",
        "make it warmer{in}",
        "heat up{in}",
        "{loc_adj}heat up",
    ],
    ("decrease", "heat"): [
        "turn down the heat{in}",
        "decrease the heating{in}",
        "make it cooler{in}",
        "too hot{in}",
        "{loc_adj}heat down",
    ],
    ("bring", "newspaper"): [
        "bring me the newspaper",
        "get me the newspaper",
        "fetch the newspaper",
        "go get the newspaper",
    ],
    ("bring", "socks"): ["bring me my socks", "get me some socks", "fetch my socks"],
    ("bring", "shoes"): ["bring me my shoes", "get my shoes", "fetch my shoes"],
    ("bring", "juice"): ["bring me some juice", "get me a juice", "fetch some juice"],
}
_LANGUAGE_PHRASES = {
    "none": ["change the language", "switch the language", "use a different language", "language settings"],
    "other": [
        "set the language to {lang}",
        "switch to {lang}",
        "change language to {lang}",
        "use {lang}",
        "{lang} please",
    ],
}


@dataclass
class Prompt:
    """One utterance to synthesize."""

    text: str
    kind: str  # "sentence" | "command" | "keyword"
    keyword: Optional[str] = None  # keyword utterances: the word, or "_unknown_"
    intent: Optional[Tuple[str, str, str]] = None  # commands: (action, object, location)


def general_sentence(rng: random.Random) -> str:
    """A sentence of 4-12 words from a small phrase grammar."""

    def np_(adj_p: float = 0.5) -> str:
        words = [rng.choice(DETS)]
        if rng.random() < adj_p:
            words.append(rng.choice(ADJECTIVES))
        words.append(rng.choice(NOUNS))
        return " ".join(words)

    subject = rng.choice(NAMES) if rng.random() < 0.4 else np_()
    form = rng.random()
    if form < 0.45:
        parts = [subject, rng.choice(VERBS_PAST), np_()]
    elif form < 0.7:
        parts = [subject, rng.choice(VERBS_INTRANS)]
        if rng.random() < 0.6:
            parts.append(rng.choice(ADVERBS))
    elif form < 0.85:
        parts = [np_(0.3), "was", rng.choice(ADJECTIVES)]
    else:
        parts = [subject, "said that", np_(0.3), rng.choice(VERBS_INTRANS)]
    if rng.random() < 0.5:
        parts.append(rng.choice(PLACES))
    if rng.random() < 0.3:
        parts.append(rng.choice(TIMES))
    text = " ".join(parts)
    n = len(text.split())
    if n < 4:
        text += " " + rng.choice(PLACES)
    words = text.split()[:12]
    return " ".join(words)


def command_utterance(rng: random.Random) -> Prompt:
    action, obj, loc = rng.choice(INTENTS)
    if action == "change language":
        if obj == "none":
            text = rng.choice(_LANGUAGE_PHRASES["none"])
        else:
            text = rng.choice(_LANGUAGE_PHRASES["other"]).format(lang=obj.lower())
    else:
        template = rng.choice(_ACTION_PHRASES[(action, obj)])
        if loc == "none":
            while "{loc_adj}" in template:  # a location adjective needs a location
                template = rng.choice(_ACTION_PHRASES[(action, obj)])
            text = template.format(**{"in": ""})
        else:
            text = template.format(**{"in": f" in the {loc}", "loc_adj": f"{loc} "})
    return Prompt(text=text, kind="command", intent=(action, obj, loc))


def keyword_utterance(rng: random.Random, unknown_p: float = 0.2) -> Prompt:
    if rng.random() < unknown_p:
        return Prompt(text=rng.choice(UNKNOWN_WORDS), kind="keyword", keyword="_unknown_")
    word = rng.choice(KEYWORDS)
    return Prompt(text=word, kind="keyword", keyword=word)


def vocabulary() -> List[str]:
    """Every word the grammar can produce (sorted)."""
    words = set(KEYWORDS) | set(UNKNOWN_WORDS) | set(NAMES) | set(NOUNS) | set(ADJECTIVES)
    words |= set(VERBS_PAST) | set(VERBS_INTRANS) | set(ADVERBS) | set(DETS)
    for phrase_list in list(_ACTION_PHRASES.values()) + list(_LANGUAGE_PHRASES.values()):
        for p in phrase_list:
            words |= set(
                p.replace("{in}", " in the kitchen bedroom washroom")
                .replace("{loc_adj}", "")
                .replace("{lang}", "chinese korean english german")
                .split()
            )
    for p in PLACES + TIMES:
        words |= set(p.split())
    words |= {"was", "said", "that", "in", "the"}
    return sorted(words)

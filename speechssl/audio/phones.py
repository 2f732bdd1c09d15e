"""The mini corpus's phone set: espeak-ng English mnemonics folded onto ARPAbet.

39 ARPAbet phones (CMUdict's set, stress removed) plus ``SIL`` for pauses and edges. espeak
mnemonics carry stress marks (``'`` primary, ``,`` secondary) and allophone variants (``t#``
flap, ``@2`` reduced schwa, ``O2``, ``i@3`` ...): stress is stripped, variants fold onto their
phoneme. Diphthongs with a following schwa (``aI@``, ``i@``, ``e@``) fold onto their first
vowel, and syllabic ``@L`` onto ``L``, so one espeak phoneme is always one phone.
"""

from __future__ import annotations

from typing import Dict, List

SILENCE = "SIL"

PHONES: List[str] = [
    "AA",
    "AE",
    "AH",
    "AO",
    "AW",
    "AY",
    "B",
    "CH",
    "D",
    "DH",
    "EH",
    "ER",
    "EY",
    "F",
    "G",
    "HH",
    "IH",
    "IY",
    "JH",
    "K",
    "L",
    "M",
    "N",
    "NG",
    "OW",
    "OY",
    "P",
    "R",
    "S",
    "SH",
    "T",
    "TH",
    "UH",
    "UW",
    "V",
    "W",
    "Y",
    "Z",
    "ZH",
]

PHONE_SET: List[str] = [SILENCE] + PHONES

ESPEAK_TO_PHONE: Dict[str, str] = {
    # vowels
    "@": "AH",
    "@2": "AH",
    "@5": "AH",
    "@L": "L",
    "@r": "ER",
    "V": "AH",
    "a#": "AH",
    "a2": "AH",
    "3": "ER",
    "3:": "ER",
    "3:r": "ER",
    "VR": "ER",
    "IR": "IH",
    "@-": "AH",
    "a": "AE",
    "aa": "AE",
    "A:": "AA",
    "A@": "AA",
    "A": "AA",
    "0": "AA",
    "A:r": "AA",
    "0#": "AA",
    "aI": "AY",
    "aI@": "AY",
    "aI3": "AY",
    "aI@3": "AY",
    "aU": "AW",
    "aU@": "AW",
    "E": "EH",
    "E2": "EH",
    "E3": "EH",
    "E@": "EH",
    "e@": "EH",
    "e": "EH",
    "eI": "EY",
    "eI@": "EY",
    "i": "IY",
    "i:": "IY",
    "i@": "IY",
    "i@3": "IY",
    "i:@": "IY",
    "I": "IH",
    "I2": "IH",
    "I#": "IH",
    "I2#": "IH",
    "y": "IY",
    "O": "AO",
    "O:": "AO",
    "O2": "AO",
    "O@": "AO",
    "o@": "AO",
    "O@r": "AO",
    "o": "OW",
    "OI": "OY",
    "oU": "OW",
    "oU#": "OW",
    "u:": "UW",
    "u": "UW",
    "u@": "UW",
    "U": "UH",
    "U@": "UH",
    "ju:": "UW",
    # consonants
    "p": "P",
    "b": "B",
    "t": "T",
    "d": "D",
    "k": "K",
    "g": "G",
    "f": "F",
    "v": "V",
    "T": "TH",
    "D": "DH",
    "s": "S",
    "z": "Z",
    "S": "SH",
    "Z": "ZH",
    "h": "HH",
    "x": "HH",
    "C": "HH",
    "m": "M",
    "n": "N",
    "N": "NG",
    "l": "L",
    "r": "R",
    "w": "W",
    "W": "W",
    "j": "Y",
    "tS": "CH",
    "dZ": "JH",
    "t#": "T",
    "d#": "D",
    "?": "T",
    "n-": "N",
    "l-": "L",
    "r-": "R",
    "z#": "Z",
    "s#": "S",
    "l/": "L",
    "r/": "R",
    "l^": "L",
    "n^": "N",
    "t2": "T",
    "d2": "D",
    "k2": "K",
    "*": "R",
    # pauses
    "_": SILENCE,
    "_:": SILENCE,
    "_!": SILENCE,
    "_|": SILENCE,
    "_^_": SILENCE,
    "": SILENCE,
}


# Zero-width markers espeak emits as their own events: they start no segment.
MODIFIERS = frozenset({";"})


class UnknownPhoneme(KeyError):
    pass


def espeak_to_phone(mnemonic: str) -> str:
    """Map one espeak phoneme event name (``'aI``, ``,E``, ``t#``) to the phone set."""
    name = mnemonic.replace("'", "").replace(",", "").replace("%", "").replace("=", "")
    if name.startswith("_"):
        return SILENCE
    if name in ESPEAK_TO_PHONE:
        return ESPEAK_TO_PHONE[name]
    # Fall back on the longest known prefix (``@L2`` -> ``@L``), never on a guess of one char
    # unless that char is itself a phoneme.
    for cut in range(len(name) - 1, 0, -1):
        if name[:cut] in ESPEAK_TO_PHONE:
            return ESPEAK_TO_PHONE[name[:cut]]
    raise UnknownPhoneme(f"espeak phoneme {mnemonic!r} has no mapping in the phone set")

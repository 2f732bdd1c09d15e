"""KS: keyword spotting (Speech Commands' 12 classes), accuracy."""

from .base import register
from .classification import UtteranceClassification


@register
class KeywordSpotting(UtteranceClassification):
    name, order = "ks", 1

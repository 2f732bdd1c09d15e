"""SID: speaker identification (VoxCeleb1's closed set), accuracy."""

from .base import register
from .classification import UtteranceClassification


@register
class SpeakerIdentification(UtteranceClassification):
    name, order = "sid", 3

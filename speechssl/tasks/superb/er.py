"""ER: emotion recognition (IEMOCAP, 4 classes, leave-one-session-out), accuracy. The mini corpus has no
emotions, so ER runs only on task dirs prepared from IEMOCAP's layout."""

from .base import register
from .classification import UtteranceClassification


@register
class EmotionRecognition(UtteranceClassification):
    name, order = "er", 4

"""IC: intent classification (Fluent Speech Commands: action | object | location), accuracy of all three."""

from .base import register
from .classification import SlotClassification


@register
class IntentClassification(SlotClassification):
    name, order = "ic", 2

"""What to send: prompt sources, length distributions, token counting."""

from infermeter.workload.datasets import DatasetRow, load_dataset
from infermeter.workload.lengths import LengthSpec
from infermeter.workload.synthetic import SyntheticPromptBuilder
from infermeter.workload.tokenizer import LocalTokenizer, ServerTokenizer, TokenCounter
from infermeter.workload.types import Prompt

__all__ = [
    "DatasetRow",
    "LengthSpec",
    "LocalTokenizer",
    "Prompt",
    "ServerTokenizer",
    "SyntheticPromptBuilder",
    "TokenCounter",
    "load_dataset",
]

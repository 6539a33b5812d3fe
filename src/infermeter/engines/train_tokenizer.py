"""Train the byte-level BPE tokenizer that generated models embed (a maintainer's tool).

Run once; its output ``data/bpe-8k.json.gz`` is committed, so that every machine generates the
same model from the same seed whatever Python it has:

    python -m infermeter.engines.train_tokenizer

The corpus is the top-level ``*.py`` files of the running Python's standard library, sorted
by name: plenty of English and code, no download.
"""

from __future__ import annotations

import gzip
import sys
import sysconfig
from pathlib import Path

VOCAB_SIZE = 8192
SPECIALS = ("<s>", "</s>")
OUT = Path(__file__).parent / "data" / "bpe-8k.json.gz"


def corpus_files() -> list[Path]:
    lib = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in lib.glob("*.py") if p.is_file())


def train(out: Path = OUT) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    files = [str(p) for p in corpus_files()]
    tok.train(files, trainer)
    # Llama models start every sequence with BOS; llama.cpp adds it, and so must HF.
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 0)]
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(gzip.compress(tok.to_str().encode(), mtime=0))
    return out


if __name__ == "__main__":
    path = train()
    print(f"wrote {path} ({path.stat().st_size} bytes) from Python {sys.version.split()[0]}")

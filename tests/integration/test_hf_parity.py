"""The generated Hugging Face folder is the same model as the GGUF: greedy outputs of
transformers and llama-server agree token for token. Needs torch and transformers (not in the
dev extra: a CPU torch is ~1 GB); skipped without them."""

from __future__ import annotations

import json
import urllib.request

import pytest

pytestmark = pytest.mark.integration


def test_transformers_and_llama_cpp_agree(llama_server, tiny_model) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    hf = str(tiny_model.hf_dir)
    tok = transformers.AutoTokenizer.from_pretrained(hf)
    model = transformers.AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32)
    prompt = "def parse(self, text): return the value of"
    ids = tok(prompt, return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=24, do_sample=False)
    hf_tokens = out[0, ids.shape[1] :].tolist()
    body = json.dumps(
        {"prompt": prompt, "n_predict": 24, "temperature": 0, "top_k": 1, "return_tokens": True}
    ).encode()
    req = urllib.request.Request(
        llama_server.url + "/completion", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        llama_tokens = json.load(resp)["tokens"]
    assert ids[0, 0].item() == 0  # BOS, as llama.cpp adds it
    assert len(hf_tokens) == 24 and 1 not in hf_tokens  # never EOS
    assert hf_tokens == llama_tokens

"""The model maker and the engine recipe, without running an engine."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from infermeter.engines.llama_cpp import CPU_FLAGS, build_key, check_compilers
from infermeter.engines.model import make_model
from infermeter.engines.shapes import SHAPES, get_shape, llama_shape
from infermeter.engines.vocab import BOS_ID, EOS_ID, load_vocab
from infermeter.errors import EngineError, UsageError

MICRO = llama_shape("micro", 64, 128, 2, 4, 2, 8192, context_length=256)


@pytest.fixture(scope="module")
def micro(tmp_path_factory: pytest.TempPathFactory):
    return make_model(MICRO, tmp_path_factory.mktemp("m"), seed=3)


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        out[name] = np.frombuffer(raw[base + a : base + b], dtype=np.float16).reshape(meta["shape"])
    return out


def test_gguf_and_hf_hold_the_same_weights(micro) -> None:
    import gguf

    reader = gguf.GGUFReader(micro.gguf)
    g = {t.name: np.array(t.data) for t in reader.tensors}
    hf = read_safetensors(micro.hf_dir / "model.safetensors")
    assert np.array_equal(g["token_embd.weight"], hf["model.embed_tokens.weight"])
    assert np.array_equal(g["blk.1.ffn_down.weight"], hf["model.layers.1.mlp.down_proj.weight"])
    # q/k are stored in llama.cpp's rotary layout: same values, permuted rows.
    q_hf = hf["model.layers.0.self_attn.q_proj.weight"]
    assert not np.array_equal(g["blk.0.attn_q.weight"], q_hf)
    assert np.array_equal(np.sort(g["blk.0.attn_q.weight"], axis=None), np.sort(q_hf, axis=None))
    fields = {f.name: f for f in reader.fields.values()}
    assert "tokenizer.ggml.merges" in fields and "tokenizer.chat_template" in fields
    cfg = json.loads((micro.hf_dir / "config.json").read_text())
    assert cfg["hidden_size"] == 64 and cfg["num_key_value_heads"] == 2 and cfg["head_dim"] == 16


def test_banned_tokens_sit_far_below_the_rest(micro) -> None:
    hf = read_safetensors(micro.hf_dir / "model.safetensors")
    head = hf["lm_head.weight"].astype(np.float32)
    vocab = load_vocab()
    banned = [i for i in range(vocab.size) if not vocab.emittable(i)]
    assert BOS_ID in banned and EOS_ID in banned
    assert all(head[i, 0] < -50 for i in banned)
    allowed = [i for i in range(vocab.size) if vocab.emittable(i)]
    assert len(allowed) > 7000 and np.all(head[allowed, 0] == 0)
    # Nothing writes residual dimension 0, and every embedding carries 1.0 there.
    assert np.all(hf["model.embed_tokens.weight"][:, 0] == 1.0)
    assert np.all(hf["model.layers.0.mlp.down_proj.weight"][0] == 0)


def test_generation_is_deterministic(tmp_path: Path, micro) -> None:
    again = make_model(MICRO, tmp_path / "again", seed=3, hf=False)
    assert again.gguf.read_bytes() == micro.gguf.read_bytes()
    other = make_model(MICRO, tmp_path / "other", seed=4, hf=False)
    assert other.gguf.read_bytes() != micro.gguf.read_bytes()


def test_tokenizer_json_loads_and_adds_bos(micro) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(micro.hf_dir / "tokenizer.json"))
    ids = tok.encode("def main(): return 0").ids
    assert ids[0] == BOS_ID and len(ids) > 3


def test_named_shapes_have_their_published_sizes() -> None:
    assert 7.2e6 < get_shape("tiny").total_params < 7.5e6
    assert 95e6 < get_shape("demo").total_params < 110e6
    assert 6.6e9 < get_shape("llama-2-7b").total_params < 6.8e9  # 6.74B
    assert 7.9e9 < get_shape("llama-3.1-8b").total_params < 8.1e9  # 8.03B
    assert set(SHAPES) >= {"tiny", "demo", "llama-2-7b", "llama-3.1-8b"}


def test_unknown_shape_suggests_close_names() -> None:
    with pytest.raises(UsageError, match="did you mean llama-2-7b"):
        get_shape("llama-2-7")


def test_missing_compiler_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineError, match="no C compiler found") as err:
        check_compilers()
    assert "\n" not in str(err.value) and err.value.exit_code == 4


def test_build_key_depends_on_flags() -> None:
    assert build_key(CPU_FLAGS) != build_key((*CPU_FLAGS, "-DGGML_CUDA=ON"))


def test_q8_0_gguf_holds_the_hf_weights_exactly(tmp_path: Path, micro) -> None:
    """Weights are k * 2**-12: their own Q8_0 blocks, so the 8-bit GGUF is the same model."""
    import gguf

    q8 = make_model(MICRO, tmp_path / "q8", seed=3, dtype="q8_0", hf=False)
    reader = gguf.GGUFReader(q8.gguf)
    tensors = {t.name: t for t in reader.tensors}
    hf = read_safetensors(micro.hf_dir / "model.safetensors")

    def deq(name: str) -> np.ndarray:
        t = tensors[name]
        assert t.tensor_type == gguf.GGMLQuantizationType.Q8_0
        return gguf.quants.dequantize(np.array(t.data), t.tensor_type)

    down = hf["model.layers.1.mlp.down_proj.weight"].astype(np.float32)
    assert np.array_equal(deq("blk.1.ffn_down.weight"), down)
    # Column 0 of the embedding (1.0) is quantized with its block (scale 1/127); the rest is exact.
    emb = deq("token_embd.weight")
    assert np.allclose(emb[:, 0], 1.0, atol=1e-3)
    assert np.array_equal(emb[:, 32:], hf["model.embed_tokens.weight"][:, 32:].astype(np.float32))
    assert 0.015 < float(np.std(down[1:])) < 0.02


def test_bf16_folder_holds_the_same_values(tmp_path: Path, micro) -> None:
    bf = make_model(MICRO, tmp_path / "bf", seed=3, hf_dtype="bfloat16")
    raw = (bf.hf_dir / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    meta = json.loads(raw[8 : 8 + n])["model.layers.0.mlp.up_proj.weight"]
    a, b = meta["data_offsets"]
    bits = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype=np.uint16).astype(np.uint32) << 16
    values = bits.view(np.float32).reshape(meta["shape"])
    f16 = read_safetensors(micro.hf_dir / "model.safetensors")["model.layers.0.mlp.up_proj.weight"]
    assert np.array_equal(values, f16.astype(np.float32))


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.xz"])
def test_a_slim_source_pack_keeps_what_the_build_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """pack-source keeps the vendored llama.cpp less what the build never configures, in
    gzip or xz by the name given, and the builder accepts what it wrote."""
    import io
    import tarfile

    from infermeter.engines import llama_cpp as lc

    kept = ["CMakeLists.txt", "ggml/src/ggml-cuda/mmq.cu", "tools/ui/CMakeLists.txt",
            "tools/mtmd/mtmd.cpp", "vendor/miniaudio/miniaudio.h"]  # fmt: skip
    dropped = ["benches/run.json", "tools/ui/tests/fixture.pdf", "tools/mtmd/test-3.mp4",
               "ggml/src/ggml-vulkan/v.cpp", "ggml/src/ggml-opencl/o.cpp", "models/vocab.gguf",
               "docs/build.md"]  # fmt: skip
    sdist = tmp_path / "sdist.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for rel in [*kept, *dropped, "../outside.txt"]:
            data = rel.encode()
            info = tarfile.TarInfo(lc.VENDOR_PREFIX + rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    monkeypatch.setattr(lc, "fetch_sdist", lambda cache_dir, given=None: sdist)
    out = lc.pack_source(tmp_path, tmp_path / f"src{suffix}")
    with open(out, "rb") as fh:
        magic = fh.read(6)
    assert magic.startswith(b"\x1f\x8b") == (suffix == ".tar.gz")
    assert magic.startswith(b"\xfd7zXZ") == (suffix == ".tar.xz")
    with tarfile.open(out) as tar:
        names = {n.removeprefix(lc.VENDOR_PREFIX) for n in tar.getnames()}
    assert names == {*kept, lc.SLIM_MANIFEST}  # (nothing that climbs out of the folder)
    lc._check_slim(out)  # the builder takes it
    assert all(lc.slim_keeps(k) for k in kept) and not any(lc.slim_keeps(d) for d in dropped)

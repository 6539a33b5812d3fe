"""Real engines to measure on any machine: llama.cpp's ``llama-server`` built from pinned
source, and random-weight models generated locally (GGUF and Hugging Face folder)."""

from infermeter.engines.llama_cpp import LLAMA_CPP_PYTHON_VERSION, build_llama_server, cached_binary
from infermeter.engines.llama_server import LlamaServer, LlamaServerConfig
from infermeter.engines.model import GeneratedModel, make_model, model_key
from infermeter.engines.shapes import SHAPES, ModelShape, get_shape

__all__ = [
    "LLAMA_CPP_PYTHON_VERSION",
    "SHAPES",
    "GeneratedModel",
    "LlamaServer",
    "LlamaServerConfig",
    "ModelShape",
    "build_llama_server",
    "cached_binary",
    "get_shape",
    "make_model",
    "model_key",
]

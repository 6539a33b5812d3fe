import infermeter


def test_all_is_sorted_and_exported() -> None:
    assert list(infermeter.__all__) == sorted(infermeter.__all__)
    for name in infermeter.__all__:
        assert hasattr(infermeter, name), name


def test_core_import_does_not_pull_heavy_extras() -> None:
    import subprocess
    import sys

    code = (
        "import sys, infermeter, infermeter.api, infermeter.cli;"
        "heavy = [m for m in ('gguf', 'tokenizers', 'torch', 'safetensors') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

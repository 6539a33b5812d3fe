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


def test_a_leaf_package_loads_only_itself() -> None:
    """``import infermeter.theory`` once loaded 74 of infermeter's modules (the root package
    imported the whole API eagerly); the public names now load on first use."""
    import subprocess
    import sys

    code = (
        "import sys, infermeter.theory;"
        "print(sorted(m for m in sys.modules if m.startswith('infermeter')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(out.stdout)
    assert all(
        m.split(".")[1:2] in ([], ["_lazy"], ["_startup"], ["_version"], ["errors"], ["theory"])
        for m in loaded
    ), loaded
    assert infermeter.run_benchmark.__module__ == "infermeter.run.benchmark"  # still there

"""The README's two commands are the contract with users and CI: keep them true."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text, flags=re.S)[:2]


def test_readme_starts_with_main_job_and_tests() -> None:
    main_job, tests = readme_commands()
    assert "infermeter demo" in main_job
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command() -> None:
    _, tests = readme_commands()
    assert tests.strip() in (ROOT / ".ci" / "run").read_text()

import json
from pathlib import Path

import pytest

from infermeter.errors import DatasetError
from infermeter.workload.datasets import load_dataset


def test_jsonl_prompts_and_messages(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text(
        '{"prompt": "hello there", "max_tokens": 5}\n\n'
        '{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}\n'
    )
    rows = load_dataset(p)
    assert rows[0].text == "hello there" and rows[0].max_tokens == 5
    assert rows[1].messages is not None and len(rows[1].messages) == 2


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "d.jsonl:2: not valid JSON"),
        ("[1, 2]", "d.jsonl:2: expected a JSON object"),
        ('{"prompt": ""}', "d.jsonl:2: needs a non-empty string"),
        ('{"prompt": "x", "max_tokens": 0}', "d.jsonl:2: max_tokens must be a positive integer"),
        ('{"messages": [{"content": "x"}]}', "d.jsonl:2: messages[0] needs"),
    ],
)
def test_bad_row_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text('{"prompt": "ok"}\n' + line + "\n")
    with pytest.raises(DatasetError) as err:
        load_dataset(p)
    assert message in str(err.value)
    assert err.value.exit_code == 2


def test_sharegpt_first_human_turn_and_reply(tmp_path: Path) -> None:
    p = tmp_path / "sg.json"
    p.write_text(
        json.dumps(
            [
                {
                    "id": "a",
                    "conversations": [
                        {"from": "human", "value": "What is 2+2?"},
                        {"from": "gpt", "value": "Four."},
                    ],
                },
                {"id": "b", "conversations": [{"from": "gpt", "value": "orphan"}]},
            ]
        )
    )
    rows = load_dataset(p)
    assert len(rows) == 1 and rows[0].text == "What is 2+2?" and rows[0].reference == "Four."


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nope.jsonl")

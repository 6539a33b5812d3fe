from infermeter.clients.formats import RequestOptions
from infermeter.clients.openai_chat import ChatCompletions
from infermeter.clients.openai_completions import Completions
from infermeter.workload.types import Prompt


def test_chat_payload_asks_for_usage_in_the_stream() -> None:
    body = ChatCompletions().payload(Prompt("hi", 7), RequestOptions(model="m", ignore_eos=True))
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["stream"] is True and body["max_tokens"] == 7
    assert body["stream_options"] == {"include_usage": True}
    assert body["ignore_eos"] is True
    vllm = ChatCompletions().payload(
        Prompt("hi", 7), RequestOptions(model="m", per_chunk_usage=True)
    )
    assert vllm["stream_options"]["continuous_usage_stats"] is True


def test_chat_chunk_kinds() -> None:
    f = ChatCompletions()
    role = f.parse({"choices": [{"delta": {"role": "assistant", "content": ""}}]})
    assert role.text == ""
    content = f.parse({"choices": [{"delta": {"content": "Hel"}, "finish_reason": None}]})
    assert content.text == "Hel" and not content.reasoning
    thinking = f.parse({"choices": [{"delta": {"reasoning_content": "hmm"}}]})
    assert thinking.text == "hmm" and thinking.reasoning
    tool = f.parse({"choices": [{"delta": {"tool_calls": [{"function": {"arguments": '{"a"'}}]}}]})
    assert tool.text == '{"a"'
    usage = f.parse({"choices": [], "usage": {"completion_tokens": 3}})
    assert usage.text == "" and usage.usage == {"completion_tokens": 3}
    err = f.parse({"error": {"message": "overloaded"}})
    assert err.error == "overloaded"


def test_completions_chunk() -> None:
    d = Completions().parse({"choices": [{"text": " x", "finish_reason": "length"}]})
    assert d.text == " x" and d.finish_reason == "length"


def test_reasoning_alone_is_output_text() -> None:
    d = ChatCompletions().parse({"choices": [{"delta": {"reasoning": "step 1"}}]})
    assert d.text == "step 1" and d.reasoning

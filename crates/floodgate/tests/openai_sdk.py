"""Drives a running Floodgate with the official `openai` Python package.

Usage: python3 openai_sdk.py BASE_URL   (exits non-zero on the first failed check)
"""
import sys

import openai

base = sys.argv[1].rstrip("/") + "/v1"
client = openai.OpenAI(base_url=base, api_key="unused", max_retries=0)

models = [m.id for m in client.models.list()]
assert models == ["tiny", "tiny-base"], models

messages = [{"role": "user", "content": "What is the capital of France?"}]
extra = {"ignore_eos": True}

chat = client.chat.completions.create(
    model="tiny", messages=messages, max_tokens=16, seed=5, extra_body=extra
)
assert chat.object == "chat.completion", chat
assert chat.choices[0].message.role == "assistant"
assert chat.choices[0].finish_reason == "length"
assert chat.usage.completion_tokens == 16, chat.usage
plain = chat.choices[0].message.content

stream = client.chat.completions.create(
    model="tiny",
    messages=messages,
    max_tokens=16,
    seed=5,
    stream=True,
    stream_options={"include_usage": True},
    extra_body=extra,
)
pieces, usage, finish = [], None, None
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
assert "".join(pieces) == plain, ("".join(pieces), plain)
assert finish == "length"
assert usage is not None and usage.completion_tokens == 16, usage

with_lp = client.chat.completions.create(
    model="tiny", messages=messages, max_tokens=4, logprobs=True, top_logprobs=2, extra_body=extra
)
assert len(with_lp.choices[0].logprobs.content) == 4
assert len(with_lp.choices[0].logprobs.content[0].top_logprobs) == 2

completion = client.completions.create(
    model="tiny-base", prompt="the capital of", max_tokens=6, seed=1, extra_body=extra
)
assert completion.object == "text_completion"
assert completion.usage.completion_tokens == 6
streamed = "".join(
    c.choices[0].text
    for c in client.completions.create(
        model="tiny-base", prompt="the capital of", max_tokens=6, seed=1, stream=True, extra_body=extra
    )
    if c.choices
)
assert streamed == completion.choices[0].text, (streamed, completion.choices[0].text)

try:
    client.chat.completions.create(model="no-such-model", messages=messages)
    raise AssertionError("unknown model accepted")
except openai.NotFoundError as e:
    assert e.body["code"] == "model_not_found", e.body

try:
    client.chat.completions.create(model="tiny", messages=messages, temperature=7)
    raise AssertionError("temperature 7 accepted")
except openai.BadRequestError as e:
    assert e.body["param"] == "temperature", e.body

print("openai SDK checks passed")

"""A user's own Python agent, as the tests run it: ``agent_otel.configure`` and four real
``openai`` calls to ``$OPENAI_BASE_URL``: the Responses API plain, streamed, and streamed from
the async client, and one Chat Completions call (the official instrumentation's path); prints
``{"run_id": ..., "texts": [...], "done_at": <time.time()>}`` on stdout."""

import asyncio
import json
import time

from openai import AsyncOpenAI, OpenAI

import agent_otel


async def streamed_async() -> str:
    client = AsyncOpenAI(api_key="test-key", max_retries=0)
    stream = await client.responses.create(model="gpt-mock", input="and async", stream=True)
    return "".join([e.delta async for e in stream if e.type == "response.output_text.delta"])


run = agent_otel.configure(service_name="triage-bot")
client = OpenAI(api_key="test-key", max_retries=0)
answer = client.responses.create(model="gpt-mock", input="say hi")
streamed = "".join(
    event.delta
    for event in client.responses.create(model="gpt-mock", input="say hi again", stream=True)
    if event.type == "response.output_text.delta"
)
chat = client.chat.completions.create(
    model="gpt-mock", messages=[{"role": "user", "content": "and chat"}]
)
chat_text = chat.choices[0].message.content
texts = [answer.output_text, streamed, asyncio.run(streamed_async()), chat_text]
run_id = run.run_id if run else None
print(json.dumps({"run_id": run_id, "texts": texts, "done_at": time.time()}), flush=True)

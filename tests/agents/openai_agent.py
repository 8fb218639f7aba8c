"""A user's own Python agent, as the tests run it: ``agent_otel.configure`` and two real
``openai`` Responses API calls (one plain, one streamed) to ``$OPENAI_BASE_URL``; prints
``{"run_id": ..., "texts": [...]}`` on stdout."""

import json

from openai import OpenAI

import agent_otel

run = agent_otel.configure(service_name="triage-bot")
client = OpenAI(api_key="test-key", max_retries=0)
answer = client.responses.create(model="gpt-mock", input="say hi")
streamed = "".join(
    event.delta
    for event in client.responses.create(model="gpt-mock", input="say hi again", stream=True)
    if event.type == "response.output_text.delta"
)
print(json.dumps({"run_id": run.run_id if run else None, "texts": [answer.output_text, streamed]}))

"""A user's own Python agent on the Anthropic client: ``agent_otel.configure`` and one real
``anthropic`` Messages API call to ``$ANTHROPIC_BASE_URL``; prints ``{"run_id": ...}``."""

import json

from anthropic import Anthropic

import agent_otel

PROMPT = "a prompt only the user may see"

run = agent_otel.configure(service_name="anthropic-bot")
client = Anthropic(api_key="test-key", max_retries=0)
message = client.messages.create(
    model="claude-mock", max_tokens=64, messages=[{"role": "user", "content": PROMPT}]
)
print(json.dumps({"run_id": run.run_id if run else None, "stop": message.stop_reason}))

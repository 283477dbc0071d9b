"""Stand-ins for the outside services, speaking their real wire formats.

Tests, the sending benchmark and the local demo point the real SDKs at these servers
instead of the internet. Each fake is an asyncio HTTP server (:mod:`.http`) that runs
either in a background thread of the test process or as its own process:

- :mod:`smsadmin.fakes.twilio`: Twilio's Messages API, status callbacks and all.
- :mod:`smsadmin.fakes.openai`: OpenAI's Responses API (scripted replies, refusals,
  latency, 429/500/stall injection, a log of the prompts received).
"""

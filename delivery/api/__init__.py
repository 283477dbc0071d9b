"""The JSON API for other systems (``/api/v1/``): API keys, messages, contacts."""

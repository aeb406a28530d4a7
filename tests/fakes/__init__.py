"""A fake fal / Replicate / OpenAI / ElevenLabs server on 127.0.0.1 that speaks their HTTP APIs, with fault knobs."""

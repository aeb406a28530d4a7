"""One HTTP client per hosted provider (fal, Replicate, OpenAI, ElevenLabs); shared plumbing in http.py."""

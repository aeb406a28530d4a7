"""How a generator becomes a Prefect task: the one task factory, the content cache policy, and cache locks."""

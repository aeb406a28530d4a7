"""Pipeline specs more than one bench runs."""

# One step whose own work is ~0 (a text template): a row's time is what Prefect and boardflow add.
OVERHEAD_SPEC = {
    "name": "overhead",
    "params": {"line": {"type": "string", "required": True}},
    "steps": {"text": {"generator": "local/text-template", "inputs": {"template": "{line}", "parameters": {
        "line": "${params.line}"}}}},
}  # fmt: skip

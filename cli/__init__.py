"""The `boardflow` command: typer commands over flows/, and everything the terminal shows (rich)."""

"""Terminal progress for a pipeline run: one line per step item, updated from the runner's events."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from .costs import CostRecord, usd
from .pipeline import add_listener


class RunProgress:
    """`with RunProgress(console) as p:` shows live step states; p.records holds the cost records after."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.states: dict[str, tuple[str, str]] = {}
        self.records: list[CostRecord] = []
        self.flow_run_id: str | None = None
        self._live = Live(self._render(), console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> RunProgress:
        self._remove = add_listener(self._on_event)
        self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._live.update(self._render())
        self._live.__exit__(*exc)
        self._remove()

    def _on_event(self, event: str, label: str, details: dict[str, Any]) -> None:
        if event == "flow":
            self.flow_run_id = details.get("flow_run_id")
            return
        if event == "finished":
            self.records = list(details["records"])
            return
        if event == "start":
            self.states[label] = ("[cyan]running[/]", details.get("generator", ""))
        elif event == "done":
            record: CostRecord = details["record"]
            status = "[green]cached[/]" if record.cached else "[green]done[/]"
            self.states[label] = (f"{status} {record.wall_seconds:.1f}s {usd(record.actual_usd)}", record.generator)
        elif event == "failed":
            self.states[label] = (
                f"[red]failed[/] {details.get('error', '')[:80]}",
                self.states.get(label, ("", ""))[1],
            )
        elif event == "skipped":
            self.states[label] = ("[yellow]skipped[/] (upstream failed)", "")
        self._live.update(self._render())

    def _render(self) -> Table:
        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column("step")
        table.add_column("generator")
        table.add_column("state")
        for label, (state, gen) in self.states.items():
            table.add_row(label, gen, state)
        done = sum(1 for s, _ in self.states.values() if "done" in s or "cached" in s)
        table.caption = f"{done}/{len(self.states)} step runs finished"
        return table

"""YAML from users (spec files, -p values, CSV cells) read with limits: size, nesting depth, alias expansion.

A few hundred bytes of YAML can stand for gigabytes once its aliases are expanded ("billion laughs"), and
PyYAML's composer recurses once per nesting level. PyYAML shares the object an alias points to, so loading
alone stays small; the blow-up comes later, when a spec is dumped, hashed or sent to Prefect. So the node
graph is measured as it would expand, and refused with a located error, before anything is built from it.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from generators.errors import InputError

MAX_DEPTH = 64  # nesting levels; real specs use fewer than ten
MAX_NODES = 100_000  # scalars, lists and mappings once every alias is expanded
SPEC_MAX_BYTES = 1_000_000
CELL_MAX_BYTES = 65_536  # one -p value or CSV cell


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing nesting deeper than MAX_DEPTH while it composes (before Python's stack runs out)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _Refused(f"it nests deeper than {MAX_DEPTH} levels", mark.line + 1)
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self._depth -= 1


class _Refused(Exception):
    def __init__(self, reason: str, line: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def load_yaml(text: str, source: str, max_bytes: int = SPEC_MAX_BYTES) -> Any:
    """`text` as YAML (safe types only), or an InputError naming `source`, the line and what to do."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > max_bytes:
        raise InputError(
            f"{source} is {size:,} bytes, over the {max_bytes:,}-byte limit for YAML given to boardflow.",
            hint="Keep specs and values small: put media in files and pass their paths or URLs.",
        )
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _measure(node)
        return loader.construct_document(node)
    except _Refused as exc:
        where = f" (line {exc.line})" if exc.line else ""
        raise InputError(
            f"{source} is refused: {exc.reason}{where}.",
            hint=f"Write it out plainly: at most {MAX_DEPTH} levels deep and {MAX_NODES:,} values with "
            "every &anchor/*alias expanded.",
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(
            f"{source} is not valid JSON/YAML: {_short(exc)}", hint="Check indentation and quotes."
        ) from None
    finally:
        loader.dispose()


def _measure(root: Node) -> None:
    """Count the nodes `root` expands to (aliases counted each time they are used); refuse cycles and excess."""
    expanded: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in expanded:
            return expanded[key]
        if key in on_path:
            raise _Refused("an alias refers to a node that contains it (a recursive alias)", node.start_mark.line + 1)
        on_path.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        on_path.discard(key)
        if total > MAX_NODES:
            raise _Refused(f"its aliases expand to more than {MAX_NODES:,} values", node.start_mark.line + 1)
        expanded[key] = total
        return total

    size(root)


def _short(exc: yaml.YAMLError) -> str:
    return " ".join(str(exc).split())[:300]

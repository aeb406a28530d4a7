"""Price formulas of catalogue entries: a small, safe arithmetic language over a step's inputs.

An entry says how many price units a step buys as text, e.g. `billed_megapixels(size(image_size)) * num_images`
or `10 + duration`. Names are input fields, the entry's tables and the provider's helper functions; numbers are
`Decimal`, so 0.1 stays 0.1. Only arithmetic, comparisons, `x if c else y`, subscripts, attribute reads of
artifacts and calls of known functions are allowed: an entry is data, never code that runs.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from ..errors import ConfigurationError

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Is: operator.is_,  # `x is None` only: the one singleton a formula can name
    ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
BUILTINS: dict[str, Callable[..., Any]] = {
    "ceil": math.ceil,
    "floor": math.floor,
    "max": max,
    "min": min,
    "len": len,
    "int": lambda v: int(Decimal(str(v))),
    "number": lambda v: Decimal(str(v)),
    "largest": lambda table: max(table.values()),  # e.g. the dearest size of a token table
    "seconds": lambda value: Decimal(str(value).removesuffix("s")),  # "8s" -> 8 (durations given as text)
}


def number(value: Any) -> Any:
    """Python numbers as Decimal (through str, so floats keep their printed value); anything else as it is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return Decimal(str(value))


def check(formula: str, where: str) -> ast.Expression:
    """Parse `formula`, refusing anything outside the language; raises ConfigurationError naming `where`."""
    try:
        tree = ast.parse(formula, mode="eval")
    except SyntaxError as exc:
        raise ConfigurationError(f"{where}: {formula!r} is not a formula ({exc.msg}).") from None
    allowed = (
        ast.Expression, ast.BinOp, ast.UnaryOp, ast.USub, ast.Constant, ast.Name, ast.Load, ast.Attribute,
        ast.Call, ast.Compare, ast.IfExp, ast.Subscript, ast.BoolOp, ast.And, ast.Or, ast.Not, ast.Tuple,
        *_BINARY, *_COMPARE,
    )  # fmt: skip
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise ConfigurationError(f"{where}: {formula!r} uses {type(node).__name__}, which formulas do not allow.")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ConfigurationError(f"{where}: {formula!r} reads a private attribute.")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise ConfigurationError(f"{where}: formula {formula!r} names {node.id}, which formulas do not allow.")
        if isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name) or node.keywords):
            raise ConfigurationError(f"{where}: {formula!r}: only plain calls of named functions are allowed.")
    return tree


def evaluate(tree: ast.Expression, names: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]]) -> Any:
    """The value of a checked formula with `names` (inputs, tables) and `functions` (builtins + provider helpers)."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return number(node.value)
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise ConfigurationError(f"formula names {node.id!r}, which is neither an input nor a table.")
            return number(names[node.id])
        if isinstance(node, ast.Attribute):
            owner = ev(node.value)
            if not isinstance(owner, BaseModel):
                raise ConfigurationError(f"formula reads .{node.attr} of a {type(owner).__name__}.")
            return number(getattr(owner, node.attr))
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp):
            return -ev(node.operand) if isinstance(node.op, ast.USub) else not ev(node.operand)
        if isinstance(node, ast.Compare):
            left = ev(node.left)
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = ev(right_node)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.BoolOp):
            values = (ev(v) for v in node.values)
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.IfExp):
            return ev(node.body) if ev(node.test) else ev(node.orelse)
        if isinstance(node, ast.Subscript):
            return number(ev(node.value)[ev(node.slice)])
        if isinstance(node, ast.Tuple):
            return tuple(ev(e) for e in node.elts)
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            fn = functions.get(node.func.id)
            if fn is None:
                raise ConfigurationError(f"formula calls {node.func.id}(), which is not a known function.")
            return number(fn(*(ev(a) for a in node.args)))
        raise ConfigurationError(f"formula node {type(node).__name__} is not allowed.")  # check() keeps these out

    return ev(tree.body)

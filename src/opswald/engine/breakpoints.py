"""Conditional breakpoints: small expressions parsed with `ast`, checked against a
whitelist and evaluated by walking the tree. User text never becomes a code object.

    cond = compile_condition("type == 'llm_call' and tokens > 1000")
    cond.evaluate({"type": "llm_call", "tokens": 1500, ...})   # True

Compile-time checks reject everything outside the small language (see `ALLOWED`);
run-time problems (None > 0.5, a missing variable, 'a' * 10**6) make a condition
False, never an exception.
"""

from __future__ import annotations

import ast
import difflib
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

__all__ = [
    "ALLOWED",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "VARIABLES",
    "BreakpointError",
    "Condition",
    "Snapshot",
    "compile_condition",
]

# in the order DESIGN §3a lists them; messages show this order
_VARIABLE_ORDER = (
    "step",
    "type",
    "tool_name",
    "model",
    "cost",
    "total_cost",
    "duration_ms",
    "tokens",
    "total_tokens",
    "error",
    "memory",
    "variables",
)
VARIABLES: frozenset[str] = frozenset(_VARIABLE_ORDER)
"""The names a condition may use; the integrator binds every one of them per step."""

SNAPSHOT_VARIABLES = frozenset({"memory", "variables"})
"""Variables bound to a `Snapshot`: the only roots of attribute access."""

FUNCTIONS: tuple[str, ...] = ("len", "abs", "min", "max")
MAX_LENGTH = 500
MAX_DEPTH = 50
MAX_REPEAT = 10_000
"""Largest str/list/tuple that `*` may build."""
MAX_CONCAT = 1_000_000
"""Largest str/list/tuple that `+` may build."""

ALLOWED = "\n".join(
    [
        "Allowed in a condition:",
        "  - variables: " + ", ".join(_VARIABLE_ORDER),
        "  - memory.changed, memory.<key>, variables.<key>, and inside them .<key>, ['key'], [0]",
        "  - literals: numbers, 'strings', True, False, None, (tuples), [lists]",
        "  - comparisons: == != < <= > >= in, not in, is None, is not None",
        "  - logic: and, or, not; arithmetic: + - * / % and unary -",
        "  - functions: " + ", ".join(FUNCTIONS),
        "Example: type == 'tool_call' and tool_name == 'send_email'",
    ]
)

_NUMBER = (int, float)
_SEQUENCE = (str, list, tuple)
_CONTAINER = (str, list, tuple, set, frozenset, Mapping)


class BreakpointError(ValueError):
    """A bad or disallowed expression; str() shows the expression and a caret under the
    problem, and what is allowed."""

    def __init__(self, reason: str, expression: str, offset: int | None, length: int = 1) -> None:
        self.reason = reason
        self.expression = expression
        self.offset = offset
        """0-based character index into `expression`, or None when there is no spot."""
        self.length = max(1, length)
        super().__init__(_render(reason, expression, offset, self.length))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason, self.expression, self.offset, self.length))


def _render(reason: str, expression: str, offset: int | None, length: int) -> str:
    lines = [f"breakpoint condition rejected: {reason}"]
    if offset is not None:
        lines += _pointer(expression, offset, length)
    else:
        lines.append("    " + _printable(expression[:100]))
    lines.append(ALLOWED)
    return "\n".join(lines)


def _pointer(expression: str, offset: int, length: int) -> list[str]:
    """The line of `expression` holding `offset`, and a caret line under the spot."""
    offset = min(max(offset, 0), len(expression))
    start = max(expression.rfind("\n", 0, offset), expression.rfind("\r", 0, offset)) + 1
    ends = [i for i in (expression.find("\n", start), expression.find("\r", start)) if i >= 0]
    line = expression[start : min(ends, default=len(expression))]
    column = offset - start
    if len(line) > 100:  # show a window around the spot
        first = max(0, column - 60)
        prefix = "..." if first else ""
        line = prefix + line[first : first + 100] + ("..." if first + 100 < len(line) else "")
        column = column - first + len(prefix)
    span = max(1, min(length, len(line) - column))
    return ["    " + _printable(line), "    " + " " * column + "^" * span]


def _printable(text: str) -> str:
    """One printable character per character, so the caret stays aligned."""
    return "".join(c if c.isprintable() else " " if c.isspace() else "?" for c in text)


class Snapshot(Mapping[str, Any]):
    """What `memory` / `variables` are bound to: the state's mapping plus `changed`.

    In a condition, `memory.key` and `memory['key']` give the value (None when absent)
    and `memory.changed` whether it changed since the previous step (a key named
    `changed` is reached as `memory['changed']`). In Python, `Snapshot` is a read-only
    Mapping (`snap['missing']` raises KeyError) whose unknown attributes read keys.
    """

    __slots__ = ("_changed", "_data")

    def __init__(self, data: Mapping[str, Any] | None, *, changed: bool) -> None:
        self._data: Mapping[str, Any] = data if data is not None else {}
        self._changed = bool(changed)

    @property
    def changed(self) -> bool:
        """Did the state change since the previous step?"""
        return self._changed

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __getattr__(self, name: str) -> Any:
        # only reached for names that are not real attributes
        if name.startswith("_"):
            raise AttributeError(name)
        return self._data.get(name)

    def __repr__(self) -> str:
        return f"Snapshot({dict(self._data)!r}, changed={self._changed})"


@dataclass(frozen=True)
class Condition:
    """A checked breakpoint condition; `Condition(text)` raises BreakpointError too."""

    expression: str
    _tree: ast.expr = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tree", _check(self.expression))

    def evaluate(self, variables: Mapping[str, Any]) -> bool:
        """The truthiness of the condition; any run-time problem counts as False."""
        try:
            return bool(_value(self._tree, variables))
        except Exception:
            return False


def compile_condition(expression: str) -> Condition:
    """Parse and check a condition; raises BreakpointError with the spot and the fix."""
    return Condition(expression)


# --- compile time -------------------------------------------------------------------


def _check(expression: str) -> ast.expr:
    if not isinstance(expression, str):
        raise BreakpointError(
            f"a condition is a string, not {type(expression).__name__}", repr(expression), None
        )
    if len(expression) > MAX_LENGTH:
        raise BreakpointError(
            f"the condition is too long ({len(expression)} characters; at most {MAX_LENGTH})",
            expression,
            MAX_LENGTH,
        )
    source = _Source(expression)
    tree = _parse(source)
    _Checker(source).check(tree.body, 1)
    return tree.body


class _Source:
    """The expression, and the way from ast positions to character offsets in it."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        # leading blanks and newlines are dropped before parsing, so offsets shift
        self.text = expression.lstrip()
        self.shift = len(expression) - len(self.text)
        self.lines = re.split(r"\r\n|\r|\n", self.text)
        self.starts = [0]
        for m in re.finditer(r"\r\n|\r|\n", self.text):
            self.starts.append(m.end())

    def offset(self, lineno: int | None, col: int | None, *, in_bytes: bool = True) -> int:
        """Character offset in `expression` of a 1-based line and a column."""
        if lineno is None or col is None or lineno < 1:
            return self.shift
        index = min(lineno, len(self.lines)) - 1
        line = self.lines[index]
        if in_bytes:
            col = len(line.encode("utf-8", "surrogatepass")[:col].decode("utf-8", "ignore"))
        return self.shift + self.starts[index] + min(max(col, 0), len(line))

    def start(self, node: ast.AST) -> int:
        return self.offset(getattr(node, "lineno", None), getattr(node, "col_offset", None))

    def end(self, node: ast.AST) -> int:
        return self.offset(getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None))

    def next_token(self, offset: int) -> int:
        """Skip closing parentheses, blanks, comments and line continuations."""
        text, i = self.expression, offset
        while i < len(text):
            c = text[i]
            if c == "#":
                while i < len(text) and text[i] not in "\r\n":
                    i += 1
            elif c == ")" or c.isspace() or c == "\\":
                i += 1
            else:
                break
        return i

    def fail(self, reason: str, offset: int, length: int = 1) -> NoReturn:
        raise BreakpointError(reason, self.expression, offset, length)


def _parse(source: _Source) -> ast.Expression:
    if not source.text:
        source.fail("the condition is empty", len(source.expression))
    bad = re.search(r"[\x00\ud800-\udfff]", source.expression)
    if bad:
        what = "a null byte" if bad.group() == "\x00" else "an unpaired surrogate"
        source.fail(f"the condition contains {what}", bad.start())
    try:
        return _quiet_parse(source.text, "eval")  # type: ignore[return-value]
    except SyntaxError as error:
        _explain_statements(source)
        source.fail(_syntax_reason(error), _syntax_offset(source, error))
    except (ValueError, RecursionError, MemoryError, OverflowError) as error:
        # a parser that gives up on nesting
        source.fail(f"the condition cannot be parsed ({error})", 0)


def _quiet_parse(text: str, mode: str) -> ast.AST:
    # parsing only builds a tree; warnings (invalid escapes) must not become errors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(text, mode=mode)


def _syntax_reason(error: SyntaxError) -> str:
    message = error.msg or "invalid syntax"
    if not error.offset and message == "invalid syntax":
        message = "the condition ends too early"
    return f"{message} (a condition is one Python-style expression)"


def _syntax_offset(source: _Source, error: SyntaxError) -> int:
    if error.lineno is None or not error.offset:  # offset 0: the text ended too early
        return len(source.expression.rstrip())
    # SyntaxError offsets count characters, 1-based
    return source.offset(error.lineno, error.offset - 1, in_bytes=False)


_STATEMENTS: dict[type[ast.stmt], str] = {
    ast.Import: "'import'",
    ast.ImportFrom: "'from ... import'",
    ast.Assign: "assignment",
    ast.AugAssign: "assignment",
    ast.AnnAssign: "assignment",
    ast.Delete: "'del'",
    ast.FunctionDef: "'def'",
    ast.AsyncFunctionDef: "'def'",
    ast.ClassDef: "'class'",
    ast.Return: "'return'",
    ast.For: "'for'",
    ast.AsyncFor: "'for'",
    ast.While: "'while'",
    ast.If: "an 'if' statement",
    ast.With: "'with'",
    ast.AsyncWith: "'with'",
    ast.Raise: "'raise'",
    ast.Try: "'try'",
    ast.Assert: "'assert'",
    ast.Global: "'global'",
    ast.Nonlocal: "'nonlocal'",
    ast.Pass: "'pass'",
    ast.Break: "'break'",
    ast.Continue: "'continue'",
}


def _explain_statements(source: _Source) -> None:
    """Text that is not one expression: name the statement, or the second expression."""
    try:
        module = _quiet_parse(source.text, "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return
    assert isinstance(module, ast.Module)
    for stmt in module.body:
        if isinstance(stmt, ast.Expr):
            continue
        what = _STATEMENTS.get(type(stmt), "a statement")
        if isinstance(stmt, ast.Assign | ast.AugAssign | ast.AnnAssign):
            target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
            at = source.next_token(source.end(target))
            source.fail("assignment is not allowed; to compare, use '=='", at)
        source.fail(
            f"{what} is not allowed: a condition is one expression, not a statement",
            source.start(stmt),
        )
    if len(module.body) > 1:
        source.fail(
            "a condition is one expression; combine several with 'and' / 'or'",
            source.start(module.body[1]),
        )
    if len(module.body) == 1:  # e.g. `yield x`, valid only as a statement
        assert isinstance(module.body[0], ast.Expr)
        _Checker(source).check(module.body[0].value, 1)


_ARITHMETIC: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Mod: "%",
}
_FORBIDDEN_OPERATORS: dict[type[ast.AST], str] = {
    ast.Pow: "'**' (power) is not allowed: it can build numbers too large to handle",
    ast.FloorDiv: "'//' is not allowed; use '/'",
    ast.MatMult: "'@' is not allowed",
    ast.LShift: "'<<' is not allowed",
    ast.RShift: "'>>' is not allowed",
    ast.BitAnd: "'&' is not allowed; for logic use 'and'",
    ast.BitOr: "'|' is not allowed; for logic use 'or'",
    ast.BitXor: "'^' is not allowed",
    ast.Invert: "'~' is not allowed",
}
_FORBIDDEN_NODES: dict[type[ast.AST], str] = {
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.Lambda: "'lambda' is not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.NamedExpr: "assignment expressions (':=') are not allowed",
    ast.Starred: "starred expressions ('*x') are not allowed",
    ast.Slice: "slices are not allowed; use a single key or index",
    ast.IfExp: "conditional expressions ('a if c else b') are not allowed; use 'and' / 'or'",
    ast.Dict: "dict displays are not allowed",
    ast.Set: "set displays are not allowed; use a tuple: ('a', 'b')",
    ast.Await: "'await' is not allowed",
    ast.Yield: "'yield' is not allowed",
    ast.YieldFrom: "'yield' is not allowed",
}


class _Checker:
    """Walks the tree, children in source order before the node's own rules, so the
    first problem reported is the leftmost, innermost one."""

    def __init__(self, source: _Source) -> None:
        self.source = source

    def fail(self, reason: str, node: ast.AST) -> NoReturn:
        start, end = self.source.start(node), self.source.end(node)
        self.source.fail(reason, start, end - start)

    def check(self, node: ast.expr, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.fail(f"the condition is nested too deeply (more than {MAX_DEPTH} levels)", node)
        if type(node) in _FORBIDDEN_NODES:
            self.fail(_FORBIDDEN_NODES[type(node)], node)
        match node:
            case ast.Constant():
                self.constant(node)
            case ast.Name():
                self.name(node)
            case ast.Tuple() | ast.List():
                for item in node.elts:
                    self.check(item, depth + 1)
            case ast.BoolOp():
                for value in node.values:
                    self.check(value, depth + 1)
            case ast.UnaryOp():
                if type(node.op) in _FORBIDDEN_OPERATORS:
                    self.source.fail(_FORBIDDEN_OPERATORS[type(node.op)], self.source.start(node))
                self.check(node.operand, depth + 1)
            case ast.BinOp():
                self.binop(node, depth)
            case ast.Compare():
                self.compare(node, depth)
            case ast.Attribute():
                self.attribute(node, depth)
            case ast.Subscript():
                self.subscript(node, depth)
            case ast.Call():
                self.call(node, depth)
            case _:
                self.fail(f"{type(node).__name__} expressions are not allowed", node)

    def constant(self, node: ast.Constant) -> None:
        if node.value is None or isinstance(node.value, bool | int | float | str):
            return
        kind = {bytes: "bytes literals", complex: "complex numbers"}.get(type(node.value))
        self.fail(f"{kind} are not allowed" if kind else f"{node.value!r} is not allowed", node)

    def name(self, node: ast.Name) -> None:
        if node.id in VARIABLES:
            return
        known = [*_VARIABLE_ORDER, "True", "False", "None"]
        close = difflib.get_close_matches(node.id, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        self.fail(f"unknown name '{node.id}'{hint}", node)

    def binop(self, node: ast.BinOp, depth: int) -> None:
        self.check(node.left, depth + 1)
        if type(node.op) not in _ARITHMETIC:
            at = self.source.next_token(self.source.end(node.left))
            reason = _FORBIDDEN_OPERATORS.get(type(node.op), "this operator is not allowed")
            self.source.fail(reason, at, 2 if isinstance(node.op, ast.Pow | ast.FloorDiv) else 1)
        self.check(node.right, depth + 1)

    def compare(self, node: ast.Compare, depth: int) -> None:
        self.check(node.left, depth + 1)
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Is | ast.IsNot) and not (_is_none(left) or _is_none(right)):
                at = self.source.next_token(self.source.end(left))
                self.source.fail(
                    "'is' / 'is not' only compare with None; to compare values, use == / !=",
                    at,
                    2,
                )
            self.check(right, depth + 1)
            left = right

    def attribute(self, node: ast.Attribute, depth: int) -> None:
        self.check(node.value, depth + 1)
        end = self.source.end(node)
        at, length = end - len(node.attr), len(node.attr)
        if node.attr.startswith("_"):
            self.source.fail(
                f"attribute '{node.attr}' is not allowed: names starting with '_' are private",
                at,
                length,
            )
        if not _in_snapshot(node.value):
            self.source.fail(
                f"attribute '.{node.attr}' is not allowed here: attributes read keys of memory"
                " and variables (and of the values inside them) only",
                at,
                length,
            )

    def subscript(self, node: ast.Subscript, depth: int) -> None:
        self.check(node.value, depth + 1)
        key = node.slice
        if isinstance(key, ast.Slice):
            self.fail(_FORBIDDEN_NODES[ast.Slice], key)
        if not _is_key(key):
            self.fail("a key or index must be a literal string or integer, like ['x'] or [0]", key)

    def call(self, node: ast.Call, depth: int) -> None:
        func = node.func
        allowed = ", ".join(FUNCTIONS)
        if isinstance(func, ast.Name):
            if func.id not in FUNCTIONS:
                self.fail(f"calling '{func.id}' is not allowed; the functions are {allowed}", func)
        elif isinstance(func, ast.Attribute):
            self.check(func, depth + 1)
            end = self.source.end(func)
            self.source.fail(
                f"calling methods ('.{func.attr}(...)') is not allowed; the functions are"
                f" {allowed}",
                end - len(func.attr),
                len(func.attr),
            )
        else:
            self.check(func, depth + 1)
            self.fail(f"only {allowed} can be called", func)
        for arg in node.args:
            self.check(arg, depth + 1)
        for keyword in node.keywords:
            self.fail(f"keyword arguments are not allowed in {func.id}()", keyword)
        count = len(node.args)
        if func.id in ("len", "abs") and count != 1:
            self.fail(f"{func.id}() takes exactly one argument ({count} given)", node)
        if count == 0:
            self.fail(f"{func.id}() needs at least one argument", node)


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _is_key(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
        return isinstance(node, ast.Constant) and type(node.value) is int
    return isinstance(node, ast.Constant) and type(node.value) in (int, str)


def _in_snapshot(node: ast.expr) -> bool:
    """Is `node` `memory` / `variables`, or a key path into one of them?"""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return isinstance(node, ast.Name) and node.id in SNAPSHOT_VARIABLES


# --- run time -----------------------------------------------------------------------


class _Problem(Exception):
    """A run-time problem: the condition is False."""


def _value(node: ast.expr, env: Mapping[str, Any]) -> Any:
    match node:
        case ast.Constant():
            return node.value
        case ast.Name():
            return env[node.id]
        case ast.BoolOp():
            return _boolop(node, env)
        case ast.UnaryOp():
            return _unary(node.op, _value(node.operand, env))
        case ast.BinOp():
            return _arithmetic(node.op, _value(node.left, env), _value(node.right, env))
        case ast.Compare():
            return _comparison(node, env)
        case ast.Attribute():
            return _attribute(_value(node.value, env), node.attr)
        case ast.Subscript():
            return _item(_value(node.value, env), _key(node.slice))
        case ast.Call():
            assert isinstance(node.func, ast.Name)
            return _call(node.func.id, [_value(arg, env) for arg in node.args])
        case ast.Tuple():
            return tuple(_value(item, env) for item in node.elts)
        case ast.List():
            return [_value(item, env) for item in node.elts]
    raise _Problem(f"unexpected {type(node).__name__}")  # the checker let it through


def _boolop(node: ast.BoolOp, env: Mapping[str, Any]) -> Any:
    result: Any = None
    for item in node.values:
        result = _value(item, env)
        if bool(result) is isinstance(node.op, ast.Or):
            return result
    return result


def _unary(op: ast.unaryop, operand: Any) -> Any:
    if isinstance(op, ast.Not):
        return not operand
    if not isinstance(operand, _NUMBER):
        raise _Problem("unary minus needs a number")
    return -operand if isinstance(op, ast.USub) else +operand


def _arithmetic(op: ast.operator, left: Any, right: Any) -> Any:
    numbers = isinstance(left, _NUMBER) and isinstance(right, _NUMBER)
    if isinstance(op, ast.Add):
        if numbers:
            return left + right
        if type(left) is type(right) and isinstance(left, _SEQUENCE):
            if len(left) + len(right) > MAX_CONCAT:
                raise _Problem("result too large")
            return left + right
    elif isinstance(op, ast.Mult):
        if numbers:
            return left * right
        seq, count = (left, right) if isinstance(left, _SEQUENCE) else (right, left)
        if isinstance(seq, _SEQUENCE) and isinstance(count, int):
            if len(seq) * count > MAX_REPEAT:
                raise _Problem("result too large")
            return seq * count
    elif numbers and isinstance(op, ast.Sub):
        return left - right
    elif numbers and isinstance(op, ast.Div):
        return left / right
    elif numbers and isinstance(op, ast.Mod):  # numbers only: no '%' string formatting
        return left % right
    raise _Problem("unsupported operand types")


def _comparison(node: ast.Compare, env: Mapping[str, Any]) -> bool:
    left = _value(node.left, env)
    for op, comparator in zip(node.ops, node.comparators, strict=True):
        right = _value(comparator, env)
        if not _compare(op, left, right):
            return False
        left = right
    return True


def _compare(op: ast.cmpop, left: Any, right: Any) -> bool:
    match op:
        case ast.Eq():
            return bool(left == right)
        case ast.NotEq():
            return bool(left != right)
        case ast.Lt():
            return bool(left < right)
        case ast.LtE():
            return bool(left <= right)
        case ast.Gt():
            return bool(left > right)
        case ast.GtE():
            return bool(left >= right)
        case ast.Is():
            return left is right
        case ast.IsNot():
            return left is not right
        case ast.In() | ast.NotIn():
            if not isinstance(right, _CONTAINER):
                raise _Problem("'in' needs a string, list or mapping")
            return (left in right) is isinstance(op, ast.In)
    raise _Problem("unexpected comparison")


def _attribute(value: Any, name: str) -> Any:
    if isinstance(value, Snapshot) and name == "changed":
        return value.changed
    if isinstance(value, Mapping):
        return value.get(name)
    raise _Problem(f"'.{name}' needs a mapping")


def _key(node: ast.expr) -> Any:
    if isinstance(node, ast.UnaryOp):
        assert isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, int)
        return -node.operand.value
    assert isinstance(node, ast.Constant)
    return node.value


def _item(value: Any, key: Any) -> Any:
    if isinstance(value, Mapping):
        return value.get(key)
    if isinstance(value, _SEQUENCE) and type(key) is int:
        return value[key]
    raise _Problem("an index needs a list or string, a key a mapping")


def _call(name: str, args: list[Any]) -> Any:
    if name == "len":
        return len(args[0])
    if name == "abs":
        if not isinstance(args[0], _NUMBER):
            raise _Problem("abs() needs a number")
        return abs(args[0])
    if len(args) == 1 and not isinstance(args[0], _CONTAINER):
        raise _Problem(f"{name}() of one argument needs a list")
    items = args[0] if len(args) == 1 else args
    return min(items) if name == "min" else max(items)

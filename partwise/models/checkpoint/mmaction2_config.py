"""mmaction2 config text (``meta['cfg']`` of an mmengine checkpoint, ``meta['config']`` of mmcv), evaluated
WITHOUT executing anything: literals, names, dict()/list() calls and arithmetic are evaluated; anything else becomes
a placeholder (:class:`_Opaque`) that the option readers of :mod:`partwise.models.checkpoint.mmaction2` treat as
unknown."""
from __future__ import annotations

class _Opaque:
    """A config value that cannot be known without running the config (a call, an import, an attribute...)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"<not evaluated: {self.text}>"


#: config text longer than this is not parsed (a real mmengine ``pretty_text`` is ~10 kB).
CONFIG_TEXT_LIMIT = 2_000_000
_NUMBER_LIMIT = 1e15
_SEQUENCE_LIMIT = 100_000


def _cfg_value(node, env: dict, depth: int = 0):
    """Evaluate one expression of a Python config WITHOUT executing anything (see :func:`parse_config_text`)."""
    import ast

    if depth > 100:
        return _Opaque("nesting too deep")

    def ev(n):
        return _cfg_value(n, env, depth + 1)

    def describe(n) -> str:
        try:
            return ast.unparse(n)[:80]
        except Exception:  # unparse of an odd tree; the description is only for messages
            return type(n).__name__

    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items: list = []
        for elt in node.elts:
            if isinstance(elt, ast.Starred):
                value = ev(elt.value)
                if not isinstance(value, (list, tuple)):
                    return _Opaque(describe(node))
                items.extend(value)
            else:
                items.append(ev(elt))
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict):
        out: dict = {}
        for key_node, value_node in zip(node.keys, node.values):
            if key_node is None:  # {**mapping}
                value = ev(value_node)
                if isinstance(value, dict):
                    out.update(value)
                continue
            key = ev(key_node)
            try:
                out[key] = ev(value_node)
            except TypeError:  # an unhashable key (a list, or a tuple holding one)
                continue
        return out
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
            out = {}
            for kw in node.keywords:
                value = ev(kw.value)
                if kw.arg is None:  # dict(**mapping)
                    if isinstance(value, dict):
                        out.update(value)
                else:
                    out[kw.arg] = value
            return out
        return _Opaque(describe(node))
    if isinstance(node, ast.Name):
        return env[node.id] if node.id in env else _Opaque(node.id)
    if isinstance(node, ast.UnaryOp):
        value = ev(node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(node.op, ast.USub):
                return -value
            if isinstance(node.op, ast.UAdd):
                return value
        if isinstance(node.op, ast.Not) and isinstance(value, (bool, int, float, str, type(None))):
            return not value
        return _Opaque(describe(node))
    if isinstance(node, ast.BinOp):
        left, right = ev(node.left), ev(node.right)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < _NUMBER_LIMIT
                      for v in (left, right))
        if numbers:
            ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
                   ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b}
            op = ops.get(type(node.op))
            if op is not None:
                try:
                    return op(left, right)
                except ZeroDivisionError:
                    return _Opaque(describe(node))
        if isinstance(node.op, ast.Add) and type(left) is type(right) and isinstance(left, (str, list, tuple)) \
                and len(left) + len(right) <= _SEQUENCE_LIMIT:
            return left + right
        return _Opaque(describe(node))
    if isinstance(node, ast.JoinedStr):  # f-strings of known strings and numbers
        parts = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                parts.append(str(part.value))
                continue
            value = ev(part.value) if isinstance(part, ast.FormattedValue) else None
            if (not isinstance(part, ast.FormattedValue) or part.conversion != -1 or part.format_spec is not None
                    or not isinstance(value, (str, int, float))):
                return _Opaque(describe(node))
            parts.append(str(value))
        text = "".join(parts)
        return text if len(text) <= _SEQUENCE_LIMIT else _Opaque("long f-string")
    return _Opaque(describe(node))


def parse_config_text(text: str) -> tuple[dict, list[str]]:
    """The top-level names of an mmengine / mmcv Python config -> ``(values, notes)``, WITHOUT executing it.

    Evaluated with :mod:`ast`: literals, lists, tuples, dicts, ``dict(...)`` calls (keywords and ``**`` of a
    known dict), names assigned earlier in the text, unary minus and arithmetic on numbers, ``+`` of strings,
    lists or tuples, f-strings of known values. Anything else (other calls, attribute access, imported names)
    stays a placeholder that option readers skip. ``_base_`` inheritance (and the lazy ``with read_base():``
    imports) cannot be resolved offline, as the base files are not in the checkpoint: ``notes`` says so, and
    options only a base sets stay unknown. (mmengine's ``pretty_text``, what its runner saves in ``meta['cfg']``,
    is already merged: it has no ``_base_``.) Raises ValueError for text that is not Python.
    """
    import ast

    if len(text) > CONFIG_TEXT_LIMIT:
        raise ValueError(f"config text of {len(text)} characters (more than {CONFIG_TEXT_LIMIT})")
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ValueError(f"config text is not Python: {type(exc).__name__}: {exc}") from None
    env: dict = {}
    notes: list[str] = []

    def bind_imports(stmt) -> None:
        for alias in stmt.names:
            name = alias.asname or alias.name.split(".")[0]
            if name != "*":
                env[name] = _Opaque(alias.name)

    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            value = _cfg_value(stmt.value, env)
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    env[target.id] = value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None and isinstance(stmt.target, ast.Name):
            env[stmt.target.id] = _cfg_value(stmt.value, env)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            bind_imports(stmt)
        elif isinstance(stmt, ast.With):
            lazy_base = [s for s in stmt.body if isinstance(s, ast.ImportFrom)]
            for s in lazy_base:
                bind_imports(s)
            if lazy_base:
                bases = ", ".join("." * s.level + (s.module or "") for s in lazy_base)
                notes.append(f"inherits {bases} (lazy import), which cannot be resolved offline")
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # a docstring
        else:
            notes.append(f"line {stmt.lineno}: statement not evaluated")
    base = env.get("_base_")
    if base is not None:
        names = base if isinstance(base, (list, tuple)) else [base]
        notes.insert(0, f"inherits _base_ = {[b if isinstance(b, str) else repr(b) for b in names]}, "
                        "which cannot be resolved offline")
    return env, notes


def _type_name(value) -> str:
    """``type`` of a config dict without its registry scope (``'mmaction.ResNet3dSlowOnly'`` ->
    ``'ResNet3dSlowOnly'``); for an imported class (lazy configs) the imported name."""
    text = value if isinstance(value, str) else value.text if isinstance(value, _Opaque) else ""
    return text.rsplit(".", 1)[-1]


def _known(value) -> bool:
    """Whether a config value was evaluated (no placeholder anywhere inside)."""
    if isinstance(value, _Opaque):
        return False
    if isinstance(value, (list, tuple)):
        return all(_known(v) for v in value)
    if isinstance(value, dict):
        return all(_known(v) for v in value.values())
    return True


def _sub(mapping, *keys) -> dict:
    """``mapping[k1][k2]...`` when every level is a dict, else ``{}``."""
    for key in keys:
        mapping = mapping.get(key) if isinstance(mapping, dict) else None
    return mapping if isinstance(mapping, dict) else {}

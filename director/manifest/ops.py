"""go-patch ops files (``bosh deploy -o ops.yml``).

An ops file is a YAML list of operations applied in order to a document::

    - type: replace
      path: /instance_groups/name=zookeeper/instances
      value: 3
    - type: remove
      path: /instance_groups/name=smoke-tests

Pointer syntax (cppforlife/go-patch, as used by the BOSH CLI): see ``pointer.py``.

Types: ``replace`` (needs ``value``), ``remove`` (must not have one) and
``test`` (``value`` must deep-equal, or ``absent: true``). An ``error`` key
replaces the failure message. Unknown keys on an op are ignored, as go-patch
does. Messages follow go-patch's wording so that operators recognise them.

``apply_ops`` is pure: it works on a copy and never shares objects between the
result, the input and the op values.
"""

from __future__ import annotations

from typing import Any

from .errors import ManifestError
from .pointer import OpError, Pointer, Token, go_type, parse_pointer, pointer_str
from .yaml import unshare


def _mismatch(kind: str, tokens, obj) -> OpError:
    return OpError(
        f"Expected to find {kind} at path '{pointer_str(tokens)}' but found '{go_type(obj)}'"
    )


def _missing_key(key: str, tokens, obj: dict) -> OpError:
    keys = sorted(k for k in obj if isinstance(k, str))
    siblings = "found map keys: '" + "', '".join(keys) + "'" if keys else "found no other map keys"
    return OpError(
        f"Expected to find a map key '{key}' for path '{pointer_str(tokens)}' ({siblings})"
    )


def _missing_index(idx: int, arr: list, tokens) -> OpError:
    return OpError(
        f"Expected to find array index '{idx}' but found array of length '{len(arr)}' "
        f"for path '{pointer_str(tokens)}'"
    )


def _concrete_index(idx: int, modifiers, arr: list, tokens) -> int:
    """Resolve a possibly negative index shifted by :prev/:next; must be in range."""
    if idx < 0:
        idx = len(arr) + idx
    for m in modifiers:
        if m == "prev":
            idx -= 1
        elif m == "next":
            idx += 1
        else:
            raise OpError(
                f"Expected to find one of the following modifiers: 'prev', 'next' but found '{m}'"
            )
    if idx < 0 or idx >= len(arr):
        raise _missing_index(idx, arr, tokens)
    return idx


def _insertion(idx: int, modifiers, arr: list, tokens) -> tuple[int, bool]:
    """Resolve the target of a last-token index: (position, insert?) per :before/:after."""
    before = after = False
    plain = []
    for m in modifiers:
        if before or after:
            which = "before" if before else "after"
            raise OpError(
                f"Expected to not find any modifiers after '{which}' modifier, but found modifier '{m}'"
            )
        if m == "before":
            before = True
        elif m == "after":
            after = True
        else:
            plain.append(m)
    num = _concrete_index(idx, plain, arr, tokens)
    if after:
        num += 1
    return num, before or after


def _matches(arr: list, t: Token) -> list[int]:
    return [
        i
        for i, item in enumerate(arr)
        if isinstance(item, dict) and item.get(t.key, _NOPE) == t.value
    ]


_NOPE = object()


def _replace(doc: Any, tokens: tuple[Token, ...], value: Any) -> Any:
    if not tokens:
        return value
    obj = doc  # containers are edited in place; ``doc`` is already a private copy
    for i, t in enumerate(tokens):
        obj = _REPLACE_STEPS[t.kind](obj, t, i, tokens, value)
    return doc


# Each step of ``_replace`` walks one token: on the last token it writes
# ``value`` (and returns None), otherwise it returns the container to walk next.


def _put(obj: list, idx: int, t: Token, upto: tuple[Token, ...], value: Any) -> None:
    pos, insert = _insertion(idx, t.modifiers, obj, upto)
    if insert:
        obj.insert(pos, value)
    else:
        obj[pos] = value


def _replace_index(obj: Any, t: Token, i: int, tokens: tuple[Token, ...], value: Any) -> Any:
    upto = tokens[: i + 1]
    if not isinstance(obj, list):
        raise _mismatch("an array", upto, obj)
    if i == len(tokens) - 1:
        _put(obj, t.index, t, upto, value)
        return None
    return obj[_concrete_index(t.index, t.modifiers, obj, upto)]


def _replace_after_last(obj: Any, t: Token, i: int, tokens: tuple[Token, ...], value: Any) -> Any:
    if not isinstance(obj, list):
        raise _mismatch("an array", tokens[: i + 1], obj)
    if i != len(tokens) - 1:
        raise OpError(f"Expected after last index token to be last in path '{pointer_str(tokens)}'")
    obj.append(value)
    return None


def _replace_match(obj: Any, t: Token, i: int, tokens: tuple[Token, ...], value: Any) -> Any:
    upto = tokens[: i + 1]
    is_last = i == len(tokens) - 1
    if not isinstance(obj, list):
        raise _mismatch("an array", upto, obj)
    idxs = _matches(obj, t)
    if t.optional and not idxs:
        if is_last:
            obj.append(value)
            return None
        new = {t.key: t.value}
        obj.append(new)
        return new
    if len(idxs) != 1:
        raise OpError(
            f"Expected to find exactly one matching array item for path "
            f"'{pointer_str(upto)}' but found {len(idxs)}"
        )
    if is_last:
        _put(obj, idxs[0], t, upto, value)
        return None
    return obj[_concrete_index(idxs[0], t.modifiers, obj, upto)]


def _replace_key(obj: Any, t: Token, i: int, tokens: tuple[Token, ...], value: Any) -> Any:
    upto = tokens[: i + 1]
    if not isinstance(obj, dict):
        raise _mismatch("a map", upto, obj)
    found = t.key in obj
    if not found and not t.optional:
        raise _missing_key(t.key, upto, obj)
    if i == len(tokens) - 1:
        obj[t.key] = value
        return None
    if not found:
        nxt = tokens[i + 1]
        if nxt.kind in ("after_last", "match"):
            obj[t.key] = []
        elif nxt.kind == "key":
            obj[t.key] = {}
        else:
            raise OpError(
                "Expected to find key, matching index or after last index token "
                f"at path '{pointer_str(tokens[: i + 2])}'"
            )
    return obj[t.key]


_REPLACE_STEPS = {
    "index": _replace_index,
    "after_last": _replace_after_last,
    "match": _replace_match,
    "key": _replace_key,
}


def _remove(doc: Any, tokens: tuple[Token, ...]) -> Any:
    if not tokens:
        raise OpError("Cannot remove entire document")
    obj = doc
    for i, t in enumerate(tokens):
        is_last = i == len(tokens) - 1
        upto = tokens[: i + 1]
        if t.kind == "index":
            if not isinstance(obj, list):
                raise _mismatch("an array", upto, obj)
            pos = _concrete_index(t.index, t.modifiers, obj, upto)
            if is_last:
                del obj[pos]
            else:
                obj = obj[pos]
        elif t.kind == "match":
            if not isinstance(obj, list):
                raise _mismatch("an array", upto, obj)
            idxs = _matches(obj, t)
            if t.optional and not idxs:
                return doc
            if len(idxs) != 1:
                raise OpError(
                    f"Expected to find exactly one matching array item for path "
                    f"'{pointer_str(upto)}' but found {len(idxs)}"
                )
            pos = _concrete_index(idxs[0], t.modifiers, obj, upto)
            if is_last:
                del obj[pos]
            else:
                obj = obj[pos]
        elif t.kind == "key":
            if not isinstance(obj, dict):
                raise _mismatch("a map", upto, obj)
            if t.key not in obj:
                if t.optional:
                    return doc
                raise _missing_key(t.key, upto, obj)
            if is_last:
                del obj[t.key]
            else:
                obj = obj[t.key]
        else:
            raise OpError(
                f"Expected to not find token 'patch.AfterLastIndexToken' at path '{pointer_str(upto)}'"
            )
    return doc


def _find(doc: Any, tokens: tuple[Token, ...]) -> Any:
    """Value at a pointer (no creation); raises OpError like go-patch's FindOp."""
    obj = doc
    for i, t in enumerate(tokens):
        upto = tokens[: i + 1]
        if t.kind == "index":
            if not isinstance(obj, list):
                raise _mismatch("an array", upto, obj)
            obj = obj[_concrete_index(t.index, t.modifiers, obj, upto)]
        elif t.kind == "match":
            if not isinstance(obj, list):
                raise _mismatch("an array", upto, obj)
            idxs = _matches(obj, t)
            if len(idxs) != 1:
                raise OpError(
                    f"Expected to find exactly one matching array item for path "
                    f"'{pointer_str(upto)}' but found {len(idxs)}"
                )
            obj = obj[_concrete_index(idxs[0], t.modifiers, obj, upto)]
        elif t.kind == "key":
            if not isinstance(obj, dict):
                raise _mismatch("a map", upto, obj)
            if t.key not in obj:
                raise _missing_key(t.key, upto, obj)
            obj = obj[t.key]
        else:
            raise OpError(
                f"Expected not to find after last index token in path '{pointer_str(upto)}'"
            )
    return obj


def _test(doc: Any, tokens: tuple[Token, ...], op: dict) -> None:
    if op.get("absent") is True:
        try:
            _find(doc, tokens)
        except OpError:
            return
        raise OpError(f"Expected to not find '{pointer_str(tokens)}'")
    found = _find(doc, tokens)
    if not _deep_equal(found, op.get("value")):
        raise OpError("Found value does not match expected value")


def _deep_equal(a: Any, b: Any) -> bool:
    # YAML ints and bools are distinct in Go; Python's True == 1 would blur them.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _describe(op: Any) -> str:
    if isinstance(op, dict):
        return f"{op.get('type', '?')} {op.get('path', '')}".rstrip()
    return repr(op)


def _parse_op(i: int, op: Any) -> tuple[str, Pointer]:
    if not isinstance(op, dict):
        raise OpError(f"Operation [{i}] must be a map with 'type' and 'path', got {go_type(op)}")
    kind = op.get("type")
    label = None
    if isinstance(kind, str):
        label = {"replace": "Replace", "remove": "Remove", "test": "Test"}.get(kind)
    if label is None:
        raise OpError(f"Unknown operation [{i}] with type '{kind if kind is not None else ''}'")
    if "path" not in op or op["path"] is None:
        raise OpError(f"{label} operation [{i}]: Missing path")
    if kind == "replace" and op.get("value") is None:
        raise OpError(f"{label} operation [{i}]: Missing value")
    if kind == "remove" and op.get("value") is not None:
        raise OpError(f"{label} operation [{i}]: Cannot specify value")
    if kind == "test" and op.get("value") is None and op.get("absent") is not True:
        raise OpError(f"{label} operation [{i}]: Missing value or absent")
    try:
        ptr = parse_pointer(op["path"])
    except OpError as exc:
        raise OpError(f"{label} operation [{i}]: Invalid path: {exc}") from None
    return kind, ptr


def validate_ops(ops: Any, source: str = "ops file") -> list[dict]:
    """Check the shape of an ops list (None = no ops, as the BOSH CLI accepts)."""
    if ops is None:
        return []
    if not isinstance(ops, list):
        raise ManifestError(
            [("", f"{source} must be a YAML list of operations, got {go_type(ops)}")], source
        )
    errors = []
    for i, op in enumerate(ops):
        try:
            _parse_op(i, op)
        except OpError as exc:
            errors.append((f"{source}[{i}]", str(exc)))
    if errors:
        raise ManifestError(errors, source)
    return ops


def apply_ops(doc: Any, ops: list[dict] | None, source: str = "ops file") -> Any:
    """Apply go-patch operations in order; returns a new document.

    Raises :class:`ManifestError` whose single error's path is ``<source>[i]``
    (the failing operation's index) and whose message names the op's path
    and go-patch's reason, or the op's ``error`` text when it has one.
    """
    ops = validate_ops(ops, source)
    result = unshare(doc)
    for i, op in enumerate(ops):
        kind, ptr = _parse_op(i, op)
        try:
            if kind == "replace":
                result = _replace(result, ptr.tokens, unshare(op["value"]))
            elif kind == "remove":
                result = _remove(result, ptr.tokens)
            else:
                _test(result, ptr.tokens, op)
        except OpError as exc:
            reason = str(exc)
            if op.get("error") is not None:
                reason = f"{op['error']}: {reason}"
            raise ManifestError(
                [(f"{source}[{i}]", f"operation [{i}] ({_describe(op)}) failed: {reason}")],
                source,
            ) from None
    return result


def find_path(doc: Any, path: str) -> Any:
    """The value at a go-patch path (``/instance_groups/name=zk/azs``); KeyError if absent."""
    try:
        return _find(doc, parse_pointer(path).tokens)
    except OpError as exc:
        raise KeyError(str(exc)) from None

"""Identification options from query parameters or form fields, and the OpenAPI text of the upload forms.

One converter for both places, so ``/identify?k=5`` and a form field ``k=5`` mean the same
and fail the same way: a ParameterError that quotes the bad value and the rule. The values
themselves are then checked by the library (``QueryOptions``), as for every other caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from singerid.errors import ParameterError
from singerid.service.config import ServiceLimits

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    kind: type
    help: str


IDENTIFY_OPTIONS = (
    Option("k", int, "neighbours per block (the paper's 11)"),
    Option("method", str, "knn (KNN-Net vote) or softmax (the classifier head)"),
    Option("top", int, "runners-up reported (5)"),
    Option("evidence", int, "reference songs reported as evidence (5)"),
    Option("similar", int, "closest singers by timbre reported (0)"),
    Option("min_similarity", float, "answer 'unknown singer' below this mean similarity, in [-1, 1]"),
    Option("min_share", float, "answer 'unknown singer' below this vote share, in [0, 1]"),
    Option("reject_unknown", bool, "use the unknown-singer threshold calibrated by build-index (false)"),
)
COUNTS = ("top", "evidence", "similar")


def read_options(query: Mapping[str, str], form: Mapping[str, Any], limits: ServiceLimits, *,
                 allowed: tuple[Option, ...] = IDENTIFY_OPTIONS, ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """Options for ``Identifier.identify`` from query parameters and form fields (form fields win).

    Unknown names are refused (a typo must not pass silently); empty values mean "the default".
    Raises ParameterError.
    """
    known = {o.name: o for o in allowed}
    unknown = sorted((set(query) | set(form)) - set(known) - set(ignore))
    if unknown:
        raise ParameterError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")
    out: dict[str, Any] = {}
    for name, option in known.items():
        raw = form.get(name, query.get(name))
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        if not isinstance(raw, str):
            raise ParameterError(f"option {name} must be a text field, not a file")
        out[name] = convert(name, raw.strip(), option.kind)
    if out.get("k") is not None and out["k"] > limits.max_k:
        raise ParameterError(f"k must be <= {limits.max_k} on this server, got {out['k']}")
    for name in COUNTS:
        if name in out and not 0 <= out[name] <= limits.max_list:
            raise ParameterError(f"{name} must lie in [0, {limits.max_list}], got {out[name]}")
    return out


def convert(name: str, raw: str, kind: type) -> Any:
    """``raw`` as ``kind`` (int, float, bool, str). Raises ParameterError quoting the value."""
    if kind is bool:
        if raw.lower() in TRUE:
            return True
        if raw.lower() in FALSE:
            return False
        raise ParameterError(f"{name} must be true or false, got {raw!r}")
    if kind in (int, float):
        try:
            value = kind(raw)
        except ValueError:
            raise ParameterError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {raw!r}") from None
        if kind is float and value != value:  # NaN
            raise ParameterError(f"{name} must be a number, got {raw!r}")
        return value
    return raw


def query_parameters(options: tuple[Option, ...]) -> list[dict[str, Any]]:
    """OpenAPI ``parameters`` for the options (the handlers read them from the request themselves)."""
    types = {int: "integer", float: "number", bool: "boolean", str: "string"}
    return [{"name": o.name, "in": "query", "required": False, "schema": {"type": types[o.kind]},
             "description": o.help + "; also accepted as a form field"} for o in options]


def multipart_body(files: dict[str, str], fields: dict[str, str] | None = None, *, many: tuple[str, ...] = ()
                   ) -> dict[str, Any]:
    """OpenAPI ``requestBody`` of a multipart form with file fields (``many``: repeatable) and text fields."""
    props: dict[str, Any] = {}
    for name, text in files.items():
        file = {"type": "string", "format": "binary"}
        props[name] = {"type": "array", "items": file, "description": text} if name in many else {**file,
                                                                                                   "description": text}
    for name, text in (fields or {}).items():
        props[name] = {"type": "string", "description": text}
    schema = {"type": "object", "properties": props, "required": list(files)}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}

"""Spec language: YAML documents validated into frozen pydantic models, with precise errors.

Public surface: `SpecLoader` (load and check files), `LoadedSpec`, the models in
`polytrade.spec.models`, `parse_expression`, and `export_schemas`.
"""

from polytrade.spec.expressions import ExpressionError, ParsedExpression, parse_expression
from polytrade.spec.loader import LoadedSpec, SpecLoader, expand_paths

__all__ = [
    "ExpressionError",
    "LoadedSpec",
    "ParsedExpression",
    "SpecLoader",
    "expand_paths",
    "parse_expression",
]

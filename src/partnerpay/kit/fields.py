"""Reading one text field of a submitted mapping (an API body or a form), with a field-named error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from partnerpay.kit.errors import ValidationError


def read_text(data: Mapping[str, Any], field: str, label: str, *, max_length: int = 200, required: bool = True) -> str:
    """The field's text, stripped; "" when absent or blank and not required."""
    value = data.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationError(f"{label} is required", field=field)
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"{label} must be text", field=field)
    value = value.strip()
    if len(value) > max_length:
        raise ValidationError(f"{label} must have at most {max_length} characters", field=field)
    return value

"""The admin API's codec, re-exported from :mod:`voidllm.codec` (where it lives now, below the CLI too) for the
modules that still import it from here; import it from :mod:`voidllm.codec`."""

from voidllm.codec import converter, parse_json_object, reject_nulls, render, structure, wire_name

__all__ = ["converter", "parse_json_object", "reject_nulls", "render", "structure", "wire_name"]

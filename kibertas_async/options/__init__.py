"""Typed options that plugins declare and users set by flag, environment variable or config file."""

from kibertas_async.options.option import (
    Option,
    OptionValues,
    format_duration,
    optional,
    parse_bool,
    parse_duration,
    parse_list,
    parse_mapping,
    parse_positive_int,
    split_names,
)

__all__ = [
    "Option",
    "OptionValues",
    "format_duration",
    "optional",
    "parse_bool",
    "parse_duration",
    "parse_list",
    "parse_mapping",
    "parse_positive_int",
    "split_names",
]

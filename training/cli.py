"""argparse flags generated from config dataclasses: one list of options, with their help."""
from __future__ import annotations

import argparse
import dataclasses
import sys
import typing


class OneLineParser(argparse.ArgumentParser):
    """On a bad flag: one clear line on stderr and exit code 2, no usage dump, no traceback."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def add_dataclass_flags(parser: argparse.ArgumentParser, cls, skip: tuple[str, ...] = ()) -> None:
    """One --flag per dataclass field; Literal fields become choices, bools take true/false."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(cls.__name__)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = hints[f.name]
        kwargs: dict = {"default": f.default, "help": f"{f.metadata.get('help', '').replace('%', '%%')} (default: {f.default})"}
        if typing.get_origin(tp) is typing.Literal:
            kwargs["choices"] = typing.get_args(tp)
        elif tp is bool:  # `--resume` alone means true; `--resume false` also works
            kwargs.update(type=_parse_bool, nargs="?", const=True, metavar="{true,false}")
        else:
            kwargs["type"] = tp
        group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, **kwargs)


def build_dataclass(cls, args: argparse.Namespace):
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in vars(args).items() if k in names})


def fail(prog: str, message: str, code: int = 1) -> typing.NoReturn:
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(code)

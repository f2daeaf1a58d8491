"""The command line's usage errors made helpful: close matches for a mistyped option or file name.

``Parser``: argparse raising ``ParseError`` instead of printing and exiting, so the command can add the
hints below and, with ``--json``, print the error as JSON.

``option_hint``: "; did you mean --width (not --widht)?" for an unknown option close to a real one.
``target_problem``: the message for a file to grade that is not there (naming the file beside it that was
most likely meant: ``7_2_Backpropagation`` when ``7_2_Backpropagation.ipynb`` exists), or a ``--backward``
/ ``--forward`` notebook or file given without ``:NAME``; None when there is nothing to say.
"""

from __future__ import annotations

import argparse
import difflib
import math
import os

NAMES = {"backward": "backward_pass", "forward": "compute_network_output"}  # the function each grades


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is raised (``ParseError``): the command adds close matches and JSON."""

    def error(self, message):
        commands = [name for action in _actions(self) if isinstance(action, argparse._SubParsersAction)
                    for name in action.choices]  # fmt: skip
        raise ParseError(message, self, commands)


class ParseError(Exception):
    """argparse's message; the parser that raised it (its usage line) and the subcommands' names."""

    def __init__(self, message: str, parser: argparse.ArgumentParser, commands: list[str]):
        super().__init__(message)
        self.parser, self.commands = parser, commands


def option_hint(parser: argparse.ArgumentParser, argv: list[str]) -> str:
    """"; did you mean --width (not --widht)?" for each unknown ``--option`` of ``argv`` close to a real
    one (of the parser or its subcommands), or "" when none is close."""
    known = sorted({option for action in _actions(parser) for option in action.option_strings})
    hints = []
    for word in argv:
        option = word.split("=", 1)[0]
        if option.startswith("--") and option not in known and not any(k.startswith(option) for k in known):
            close = difflib.get_close_matches(option, known, n=1, cutoff=0.6)
            hints += [f"{close[0]} (not {option})"] if close else []
    return f"; did you mean {' and '.join(hints)}?" if hints else ""


def _actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)


def target_problem(notebook: str | None, backward: str | None, forward: str | None) -> str | None:
    """What is wrong, before anything is loaded, with the files ``--notebook``, ``--backward`` and
    ``--forward`` name (None: nothing; a module or a file that fails to import is the loader's to say)."""
    if notebook and os.path.isdir(notebook):
        return (f"--notebook: {notebook!r} is a folder; name one notebook in it, or grade them all with "
                f"manual-backprop grade {notebook}")
    if notebook and not os.path.isfile(notebook):
        return f"--notebook: no such file {notebook!r}{file_hint(notebook, '.ipynb')}"
    for option, spec in (("backward", backward), ("forward", forward)):
        if spec is None:
            continue
        target, sep, name = spec.rpartition(":")
        if not sep and spec.endswith((".ipynb", ".py")):
            is_notebook = spec.endswith(".ipynb")
            every = f"--notebook {spec} to grade every function it defines, or " if is_notebook else ""
            return f"--{option} {spec}: which function? Use {every}--{option} {spec}:{NAMES[option]}"
        if not sep:
            continue  # the loader says what FILE:NAME means
        if target.endswith((".py", ".ipynb")) or os.sep in target:
            if not os.path.isfile(target):
                return f"--{option}: no such file {target!r}{file_hint(target, '.py', '.ipynb')}"
        elif os.path.isfile(target + ".ipynb") and not os.path.exists(target + ".py"):
            return f"--{option} {spec}: no module {target!r}; did you mean {target}.ipynb:{name}?"
    return None


def file_hint(path: str, *suffixes: str) -> str:
    """"; did you mean NAME?" for the file beside ``path`` it most likely meant: ``path`` with one of
    ``suffixes`` added, else the closest name of that folder ending in one of them; "" when none is close."""
    for suffix in suffixes:
        if os.path.isfile(path + suffix):
            return f"; did you mean {path + suffix}?"
    folder, base = os.path.split(path)
    try:
        names = sorted(n for n in os.listdir(folder or ".") if n.endswith(suffixes))
    except OSError:
        return ""
    close = difflib.get_close_matches(base, names, n=1, cutoff=0.6)
    return f"; did you mean {os.path.join(folder, close[0])}?" if close else ""


def positive_int(minimum, maximum=None):
    """An argparse type: an integer in [minimum, maximum]."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
        return value

    return parse


def positive_float(text, least: str = "> 0"):
    """An argparse type: a finite number > 0 (or >= 0)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and (value > 0 or (least == ">= 0" and value == 0))):
        raise argparse.ArgumentTypeError(f"must be a finite number {least}, got {text}")
    return value


def non_negative_float(text):
    return positive_float(text, ">= 0")


class UsageError(Exception):
    """A mistake in the command line or in the function to grade: one line on stderr, exit 2."""

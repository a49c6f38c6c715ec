"""`radview` command line: opens the GUI, or runs a subcommand (info, convert, render, ...) headless."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from viewer.core.errors import RadviewError

#: Subcommand modules under viewer/commands; each defines NAME, HELP, add_arguments(p), run(args).
COMMAND_MODULES = (
    "info",
    "convert",
    "render",
    "demo_data",
    "export_seg",
    "anonymize",
    "stats",
    "models",
    "segment",
    "detect",
    "register",
    "pacs",
    "batch",
    "train",
    "finetune",
    "explain",
    "synthesize",
)


def _load_commands() -> dict:
    mods = {}
    for name in COMMAND_MODULES:
        mod = importlib.import_module(f"viewer.commands.{name}")
        mods[mod.NAME] = mod
    return mods


def _subcommand_parser(commands: dict, selected: str) -> argparse.ArgumentParser:
    """The parser of ``selected``'s arguments (the other subcommands listed by name only: some argument lists
    import heavy modules, e.g. VTK for render's choices, which every other command would pay for)."""
    parser = argparse.ArgumentParser(prog="radview", description="radview radiology viewer: command line tools")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, mod in commands.items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        p.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
        if name == selected:
            mod.add_arguments(p)
    return parser


def _gui_parser(commands: dict) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radview",
        description="Open the radview viewer on images (DICOM folders/files, NIfTI, NRRD, MHA). "
        f"Subcommands: {', '.join(commands)} (radview COMMAND --help).",
    )
    parser.add_argument("paths", nargs="*", help="image files or DICOM folders to open")
    parser.add_argument("--demo", action="store_true", help="open the built-in demo study")
    parser.add_argument("--screenshot", metavar="PNG", help="load, render, save a grab of the window, exit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `radview` console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _load_commands()
    first = next((a for a in argv if not a.startswith("-")), None)
    is_sub = first in commands
    args = (_subcommand_parser(commands, first) if is_sub else _gui_parser(commands)).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        if is_sub:
            return int(commands[args.command].run(args) or 0)
        from viewer.ui.app import run_gui

        return run_gui(args.paths, demo=args.demo, screenshot=args.screenshot)
    except RadviewError as err:
        if args.debug:
            raise
        print(f"radview: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("radview: cancelled", file=sys.stderr)
        return 130
    except (OSError, ValueError) as err:
        if args.debug:
            raise
        print(f"radview: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

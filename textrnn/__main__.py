"""`python -m textrnn` and the `textrnn` command: Ctrl-C while the program is still loading exits
quietly (130) instead of printing a traceback from inside an import."""

import sys


def main() -> None:
    try:
        from textrnn.cli import main as cli_main
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    cli_main()


if __name__ == "__main__":
    main()

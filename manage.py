#!/usr/bin/env python
"""Django's command-line utility for Homeroom."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    from config.env import MissingSetting

    try:
        execute_from_command_line(sys.argv)
    except MissingSetting as error:
        # A configuration mistake, not a bug: say what to set, without a traceback.
        sys.exit(f"homeroom: {error}")


if __name__ == "__main__":
    main()

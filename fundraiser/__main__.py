"""`python -m fundraiser`: the same as the `fundraiser` command."""

from fundraiser.cli import main

main()

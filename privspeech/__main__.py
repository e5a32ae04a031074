"""`python -m privspeech` runs the CLI."""

from .cli.app import main

main()

"""``python -m billbridge.cli``, as the ``billbridge`` script."""

from billbridge.cli import main

main()

"""Write cli.md at build time from the argument parsers themselves, so it is never copied by hand.

MkDocs runs this through the gen-files plugin (mkdocs.yml); every command in
``numpy_cnn.cli.main.COMMANDS`` gets its ``--help`` text.
"""

import os

import mkdocs_gen_files

os.environ["COLUMNS"] = "100"   # argparse wraps help to the terminal: the same width on every machine

from numpy_cnn.cli.main import COMMANDS, DEFAULT_COMMAND, PROG, _parser  # noqa: E402

with mkdocs_gen_files.open("cli.md", "w") as page:
    page.write("# Command line\n\n")
    page.write(f"Generated from the argument parsers of `{PROG}` when the docs are built "
               "(`docs/_gen/cli_reference.py`), so it always matches the code. "
               f"`python {PROG} NAME --help` prints the same text.\n\n")
    for name in [DEFAULT_COMMAND] + sorted(n for n in COMMANDS if n != DEFAULT_COMMAND):
        title = f"`{PROG}`" + ("" if name == DEFAULT_COMMAND else f" `{name}`")
        page.write(f"## {name}\n\n{title}: {COMMANDS[name].help}\n\n```text\n{_parser(name).format_help().rstrip()}\n```\n\n")

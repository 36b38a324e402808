"""main.py's flags as the Markdown table that docs/flags.md carries (grouped, with defaults).

    python3 -m tools.flags_table                         # print it
    python3 -m tools.flags_table --write docs/flags.md   # replace the table between the flags markers
"""
import argparse
import re
import sys

from train.options import build_full_parser


def flags_markdown():
    parser = build_full_parser()
    lines = []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if not isinstance(a, argparse._HelpAction)]
        if not actions:
            continue
        lines += ["", "**%s**" % group.title, "", "| flag | default | meaning |", "|---|---|---|"]
        for action in actions:
            default = action.default
            if isinstance(default, list):
                default = ",".join(str(v) for v in default)
            help_text = (action.help or "").replace("|", "\\|")
            if action.choices:
                help_text += " (%s)" % ", ".join(map(str, action.choices))
            lines.append("| `%s` | `%s` | %s |" % (action.option_strings[0], default, help_text))
    return "\n".join(lines[1:])


def write_table(path):
    """Replace the text between ``<!-- flags:start -->`` and ``<!-- flags:end -->`` of the file at path."""
    text = open(path).read()
    pattern = re.compile(r"(<!-- flags:start -->\n).*?(\n<!-- flags:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit("error: %s has no <!-- flags:start --> ... <!-- flags:end --> markers" % path)
    table = flags_markdown()
    open(path, "w").write(pattern.sub(lambda m: m.group(1) + table + m.group(2), text))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        write_table(sys.argv[2])
    else:
        print(flags_markdown())

"""The README and docs/flags.md stay true: the flag table is main.py's, and the two commands exist."""
import os
import re

from tools.flags_table import flags_markdown

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _readme():
    return open(os.path.join(ROOT, "README.md")).read()


def _flags_page():
    return open(os.path.join(ROOT, "docs", "flags.md")).read()


def test_flag_table_matches_the_parser():
    text = _flags_page()
    match = re.search(r"<!-- flags:start -->\n(.*?)\n<!-- flags:end -->", text, re.S)
    assert match, "README.md must carry the flag table between the flags markers"
    assert match.group(1).strip() == flags_markdown().strip(), \
        "README flag table is stale: regenerate it with python3 -m tools.flags_table"


def test_two_commands_first_and_in_the_makefile():
    text = _readme()
    first_block = text.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block, "the two commands come first"
    makefile = open(os.path.join(ROOT, "Makefile")).read()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M), \
        "Makefile must define demo and test"
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    assert "make test" in ci, ".ci/run must run the README's test command"


def test_layout_names_every_top_level_part():
    text = _readme()
    match = re.search(r"## Layout\n\n```\n(.*?)```", text, re.S)
    assert match, "README.md must have a Layout section with a code block"
    named = {line.split()[0] for line in match.group(1).splitlines() if line and not line[0].isspace()}
    parts = {name + ("/" if os.path.isdir(os.path.join(ROOT, name)) else "") for name in os.listdir(ROOT)
             if not name.startswith(".") and (name.endswith(".py") or (
                 os.path.isdir(os.path.join(ROOT, name))
                 and any(f.endswith(".py") for f in os.listdir(os.path.join(ROOT, name)))))}
    assert parts <= named, "README Layout misses %s" % sorted(parts - named)
    assert named <= parts, "README Layout names what is not there: %s" % sorted(named - parts)


def test_the_boolean_spellings_the_readme_names_are_str2bools():
    import argparse

    from utils.flags import str2bool

    match = re.search(r"booleans take (.*?) for true and (.*?) for false, in any letter case\s*\((.*?)\)"
                      r"(.*?); anything else \((.*?)\) is an error", _flags_page(), re.S)
    assert match, "README's Flags section must say which boolean spellings are accepted"
    words = [re.findall(r"`([^`]*)`", group) for group in match.groups()]
    true_words, false_words, examples, refused = words[0], words[1], words[2], words[4]
    assert true_words and false_words and examples, "the README names spellings: %s" % match.group(0)
    for claimed, value in [(true_words, True), (false_words, False)]:
        for word in claimed:
            for spelling in (word, word.lower(), word.upper(), word.swapcase()):
                assert str2bool(spelling) is value, "README: %r means %s" % (spelling, value)
    said = {w.lower() for w in true_words + false_words}
    assert {w.lower() for w in examples} <= said, "the case examples %s are among %s" % (examples, said)
    others = refused + ["", "yes", "no", "on", "off", "y", "n", "t", "f", "2", "-1", "none", "truee"]
    for spelling in others:
        assert spelling.lower() not in said, "%r is both accepted and refused in the README" % spelling
        try:
            str2bool(spelling)
        except argparse.ArgumentTypeError:
            continue
        raise AssertionError("str2bool accepts %r, which the README says is an error" % spelling)

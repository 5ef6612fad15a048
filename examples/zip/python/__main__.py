# A zip action: __main__.py at the archive's root; the textstats package is
# importable from virtualenv/lib/python3.11/site-packages, as in OpenWhisk.
import textstats


def main(args):
    text = args.get("text", "the quick brown fox jumps over the lazy dog the end")
    return textstats.summary(text)

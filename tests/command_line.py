"""Running the command line in-process, as the tests of its commands do."""

from latentmorph.cli import main


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """The exit status (argparse's own errors included), stdout and stderr of `latentmorph
    ARGV...` (arguments may be paths)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err

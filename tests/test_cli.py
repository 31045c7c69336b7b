"""The command line's contract for output piped into a reader that stops early (``partwise ... | head -n 1``)."""
import subprocess
import sys


def test_output_closed_early_exits_0_without_traceback():
    """`scripts/demo.sh` pipes `partwise synth` into `head -n 1` under `set -o pipefail`: when the reader has gone,
    the command must end quietly with status 0 (BrokenPipeError is an OSError: it must not reach the file-error
    handler, which re-raises errors without a file)."""
    code = ("import sys; from partwise.cli import main\n"
            "sys.stdout.close = lambda: None\n"
            "class Gone:\n"
            "    def write(self, s): raise BrokenPipeError(32, 'Broken pipe')\n"
            "    def flush(self): pass\n"
            "    def fileno(self): return sys.__stdout__.fileno()\n"
            "sys.stdout = Gone()\n"
            "sys.exit(main(['models', 'list']))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr

"""The PDF report must not change how the rest of the process reads images."""

from __future__ import annotations

import subprocess
import sys

_SCRIPT = """
from PIL import ImageFile
from sprava.casefile.report import render_pdf
pdf = render_pdf("<html><body><p>Case</p></body></html>", {})
assert pdf is not None and pdf.startswith(b"%PDF"), "no PDF"
print(ImageFile.LOAD_TRUNCATED_IMAGES)
"""


def test_making_a_pdf_leaves_truncated_images_refused() -> None:
    """WeasyPrint, when imported, tells Pillow to accept truncated images everywhere; a
    server that exported a case file would then analyse half-received photos as whole.
    Run in a fresh interpreter, so that no earlier import has set or hidden the flag."""
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"

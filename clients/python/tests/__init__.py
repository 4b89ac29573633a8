# The tests exercise the source tree: `python3 -m unittest discover -s tests -t .` from clients/python
# works without installing the package (an installed copy would otherwise be tested instead).
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))

# The library warns on stderr (reconnects, failing callbacks); the tests provoke those on purpose.
# SB_PY_TEST_LOG=1 shows them.
import logging  # noqa: E402

if not os.environ.get("SB_PY_TEST_LOG"):
    logging.getLogger("switchboard_robot").setLevel(logging.CRITICAL)

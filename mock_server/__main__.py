"""``python -m mock_server``: serve the mock LLM server (see ``mock_server.cli``)."""

import sys

from mock_server.cli import main

if __name__ == "__main__":
    sys.exit(main())

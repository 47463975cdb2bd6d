"""``python -m parity.mistakes [WORK_DIR]``: run the whole porting-mistake catalogue (each patched R side against
its Python reference, two workers at a time) and print what the report says for each, as a Markdown table."""

import sys
import tempfile
from pathlib import Path

from parity.mistakes import catalog_table, load_catalog, run_catalog

work_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="mistakes-"))
print(catalog_table(run_catalog(list(load_catalog()[0]), work_dir)))

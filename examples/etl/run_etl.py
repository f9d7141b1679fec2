"""DigitalHub's ETL tutorial, run locally by fn-wrapper: its own code, with only
`import digitalhub as dh` replaced by `import wrapper as dh`.

    python examples/etl/run_etl.py            # from anywhere: it works in this folder

The CSV of traffic sensors ("spire") is shipped in data/ and served by this script over
HTTP on 127.0.0.1, as the tutorial reads it from an open-data portal. Entities, functions and
runs go to the store every fn-wrapper command uses (--store / FN_WRAPPER_STORE, by default
~/.local/share/fn-wrapper/store).
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import wrapper as dh

HERE = Path(__file__).resolve().parent


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        """No request lines among the example's output."""


def serve_data() -> str:
    """The data folder over HTTP on a free 127.0.0.1 port; the CSV's URL."""
    handler = functools.partial(Quiet, directory=str(HERE / "data"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/spire.csv"


def main() -> None:
    os.chdir(HERE)  # code_src paths below are relative to the example's folder
    URL = serve_data()

    project = dh.get_or_create_project("demo-etl")
    di = project.new_dataitem(name="url_data_item", kind="table", path=URL)
    fn = project.new_function(
        name="download-data",
        kind="python",
        python_version="PYTHON3_11",
        code_src="src/download_data.py",
        handler="downloader",
    )
    run = fn.run(action="job", inputs={"url": di.key}, local_execution=True)
    run.wait()
    print(run.output("dataset").as_df().head())
    print(run.results())

    proc = project.new_function(
        name="process-spire",
        kind="python",
        python_version="PYTHON3_11",
        code_src="src/process_spire.py",
        handler="process",
    )
    proc.run(action="job", inputs={"di": run.output("dataset").key}, local_execution=True).wait()

    api = project.new_function(
        name="signal-api",
        kind="python",
        python_version="PYTHON3_11",
        code_src="src/api.py",
        handler="serve",
        init_function="init_context",
    )
    srv = api.run(
        action="serve", init_parameters={"dataitem": "dataset-spire"}, local_execution=True
    )
    print(srv.invoke(method="GET", params={"page": 1, "size": 5}).json())
    srv.stop()


if __name__ == "__main__":
    main()

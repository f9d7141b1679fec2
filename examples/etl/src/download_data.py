from digitalhub_runtime_python import handler


@handler(outputs=["dataset"])
def downloader(url):
    # read the remote CSV the url dataitem points at, and keep it as a table
    return url.as_df(file_format="csv", sep=";")

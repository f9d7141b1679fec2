from digitalhub_runtime_python import handler

KEPT = ["codice spira", "Nome via", "latitudine", "longitudine", "direzione"]


@handler(outputs=["dataset-spire"])
def process(project, di):
    # one row per sensor ("spira"), with where it is
    df = di.as_df()
    return df.groupby(["codice spira"]).first().reset_index()[KEPT]

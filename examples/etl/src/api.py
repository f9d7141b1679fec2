import json


def init_context(context, dataitem):
    di = context.project.get_dataitem(dataitem)
    setattr(context, "df", di.as_df())  # noqa: B010 - as the tutorial writes it


def serve(context, event):
    fields = event.fields or {}
    page, size = int(fields.get("page", 0)), int(fields.get("size", 10))
    rows = context.df.iloc[page * size : (page + 1) * size]
    return {
        "page": page,
        "size": size,
        "total": len(context.df),
        "data": json.loads(rows.to_json(orient="records")),
    }

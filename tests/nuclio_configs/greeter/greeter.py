import os


def handler(context, event):
    name = event.body.decode() if isinstance(event.body, bytes) else str(event.body or "")
    context.logger.info_with("greeting", name=name, worker=os.getpid())
    return context.Response(
        body=f"{os.environ['GREETING']}, {name or 'world'}!",
        headers={"x-greeter": "greeter.py"},
        content_type="text/plain",
        status_code=200,
    )

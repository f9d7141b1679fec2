"""A greeting function: the README's first example."""


def init(context, greeting="Hello"):
    """Runs once per worker: keep what every call needs on context.user_data."""
    context.user_data.greeting = greeting


def handler(context, event):
    """Greets the name in a JSON body ({"name": ...}) or in the ?name= query field."""
    body = event.body if isinstance(event.body, dict) else {}
    name = body.get("name") or event.fields.get("name") or "world"
    context.logger.info_with("greeting", name=name)
    return {"message": f"{context.user_data.greeting}, {name}!", "request_id": event.id}

"""CloudEvents 0.1 requests as Nuclio's own tests send them
(nuclio/nuclio pkg/processor/test/cloudevents/suite.go), for the event tests of every door."""

NOW = "2024-05-06T07:08:09Z"

STRUCTURED_01 = {
    "cloudEventsVersion": "0.1",
    "eventType": "com.example.someevent",
    "eventTypeVersion": "1.0",
    "source": "/mycontext",
    "eventID": "A234-1234-1234",
    "eventTime": NOW,
    "extensions": {"comExampleExtension": "value"},
    "contentType": "text/xml",
    "data": "valid xml",
}
BINARY_01 = {
    "Content-Type": "text/xml",
    "CE-EventID": "A234-1234-1234",
    "CE-Source": "/mycontext",
    "CE-EventTime": NOW,
    "CE-EventType": "com.example.someevent",
    "CE-EventTypeVersion": "1.0",
    "CE-CloudEventsVersion": "0.1",
}

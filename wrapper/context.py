"""The nuclio-sdk `Context` handlers and init functions receive."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Callable, Optional

import nuclio_sdk

USER_LOGGER = "function"


class UserLogger(nuclio_sdk.Logger):  # type: ignore[misc]
    """Nuclio's logger (`debug/info/warn/error`, `*_with`, `bind`) plus the stdlib spellings,
    honouring the level of the `function` logger (by default the root's: `--log-level`)."""

    def __init__(self, name: str = USER_LOGGER) -> None:
        # nuclio-sdk's would set the shared logger's level again for every context made
        self._logger = logging.getLogger(name)
        self._bound_variables: dict[str, Any] = {}

    def warning(self, message: str, *args: Any) -> None:
        self.warn(message, *args)

    def exception(self, message: str, *args: Any) -> None:
        self._logger.exception(message, *args, extra={"with": dict(self._bound_variables)})

    def _update_bound_vars_and_log(self, level: int, message: str, *args: Any, **kw: Any) -> None:
        """nuclio-sdk's, skipping what the log level leaves out before making a record."""
        if self._logger.isEnabledFor(level):
            super()._update_bound_vars_and_log(level, message, *args, **kw)


class Context(nuclio_sdk.Context):  # type: ignore[misc]
    """nuclio-sdk's Context, plus DigitalHub's `context.project` and `context.run` (DESIGN §5):
    the door's reserved values, which it makes on first use."""

    reserved: Mapping[str, Any] = {}

    @property
    def project(self) -> Any:
        return self._reserved("project")

    @property
    def run(self) -> Any:
        return self._reserved("run")

    def _reserved(self, name: str) -> Any:
        try:
            return self.reserved[name]
        except KeyError:
            raise AttributeError(f"context.{name}: this context has no store") from None


def make_context(
    *,
    worker_id: str = "0",
    trigger_kind: str = "http",
    trigger_name: str = "",
    platform_kind: str = "local",
    namespace: str = "default",
    on_control: Optional[Callable[[dict[str, Any]], Any]] = None,
    reserved: Optional[Mapping[str, Any]] = None,
) -> Context:
    """A Context whose logger writes through the runtime's log configuration.

    `on_control` (async) carries the platform's control messages, e.g. explicit stream acks;
    `reserved` holds the `project` and `run` the door gives its function.
    """
    logger = UserLogger()
    platform = nuclio_sdk.Platform(
        platform_kind, namespace=namespace, on_control_callback=on_control
    )
    trigger = nuclio_sdk.TriggerInfo(trigger_kind, trigger_name)
    context = Context(logger, platform, worker_id, trigger)
    if reserved is not None:
        context.reserved = reserved
    return context

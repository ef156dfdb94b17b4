"""The one place where Podman, podman-py, requests and urllib3 failures, and malformed
answers, become asyncpod errors."""

from __future__ import annotations

import http.client
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import requests
import urllib3.exceptions

from ..._exceptions import (
    AsyncpodError,
    BackendError,
    BackendUnavailableError,
    ImageError,
    ObjectExistsError,
    ObjectNotFoundError,
    PortInUseError,
)

__all__ = ["PodmanStatusError", "translate_errors"]

_log = logging.getLogger("asyncpod.podman")

_PORT_MARKERS = ("address already in use", "port is already allocated")
#: the port of "listen tcp4 0.0.0.0:8080: bind: address already in use"
_PORT_IN_MESSAGE = re.compile(r":(\d+): bind: address already in use")
_GONE_MARKERS = ("no such container", "no such pod", "no such volume")
_EXISTS_MARKERS = ("already in use", "already exists", "name is in use")
_IMAGE_MARKERS = (
    "image not known",
    "no such image",
    "unable to find",
    "image not found",
    "repository name must",
    "invalid reference format",
    "manifest unknown",
)


class PodmanStatusError(Exception):
    """An HTTP error status from the libpod API (raised by the backend, translated here)."""

    def __init__(self, status: int, message: str, cause: str = "") -> None:
        self.status = status
        self.message = message
        self.cause = cause
        super().__init__(f"HTTP {status}: {message}")

    @classmethod
    def from_body(cls, status: int, body: bytes) -> PodmanStatusError:
        """Parse Podman's ``{"cause","message","response"}`` error body."""
        text = body.decode("utf-8", "replace").strip()
        try:
            data = json.loads(text)
        except ValueError:
            return cls(status, text or http.client.responses.get(status, "error"))
        if isinstance(data, dict):
            message = str(data.get("message") or data.get("cause") or text)
            return cls(status, message, str(data.get("cause") or ""))
        return cls(status, text)


def _from_status(
    exc: PodmanStatusError, what: str, image: str | None, pull: bool = False
) -> BackendError:
    message = exc.message
    lower = f"{exc.cause} {message}".lower()
    text = f"{what}: {message}" if what else message
    if any(marker in lower for marker in _PORT_MARKERS):
        port = _PORT_IN_MESSAGE.search(message)
        return PortInUseError(text, port=int(port.group(1)) if port else None)
    if image is not None and (pull or any(marker in lower for marker in _IMAGE_MARKERS)):
        return ImageError(image, message)
    if exc.status == 404 or (exc.status == 500 and any(m in lower for m in _GONE_MARKERS)):
        # Podman answers 500 "does not exist in database: no such container" (or "no pod
        # with ID ... found in database: no such pod") for an object removed while the
        # request ran.
        return ObjectNotFoundError(text)
    if exc.status in (409, 500) and any(marker in lower for marker in _EXISTS_MARKERS):
        return ObjectExistsError(text)
    return BackendError(text)


def _unavailable(exc: BaseException, what: str) -> BackendUnavailableError:
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
        reason = f"the Podman service did not answer in time ({reason})"
    else:
        reason = f"lost the connection to the Podman service ({reason})"
    return BackendUnavailableError(f"{what}: {reason}" if what else reason)


@contextmanager
def translate_errors(
    what: str = "", *, image: str | None = None, pull: bool = False
) -> Iterator[None]:
    """Turn every engine failure raised in the block into an asyncpod error.

    *what* prefixes the message (e.g. ``"create container 'web'"``); *image* makes image
    failures :class:`~asyncpod.ImageError` naming it (every error status, with *pull*).
    A malformed answer (``KeyError``, ``TypeError`` or ``ValueError`` from reading it) is a
    :class:`~asyncpod.BackendError`. asyncpod errors pass through.
    """
    # podman-py is imported lazily (slow import); APIError wraps OSError from requests.
    from podman.errors import APIError, PodmanError

    try:
        yield
    except AsyncpodError:
        raise
    except PodmanStatusError as exc:
        raise _from_status(exc, what, image, pull) from exc
    except APIError as exc:
        status = getattr(exc, "status_code", None)
        if isinstance(status, int) and status >= 400:
            raise _from_status(
                PodmanStatusError(status, str(getattr(exc, "explanation", "") or exc)),
                what,
                image,
                pull,
            ) from exc
        cause = exc.__cause__ or exc
        raise _unavailable(cause, what) from exc
    except (
        requests.RequestException,
        urllib3.exceptions.HTTPError,
        http.client.HTTPException,
        OSError,
    ) as exc:
        # requests' ConnectionError, urllib3's ProtocolError on a cut stream, socket errors
        raise _unavailable(exc, what) from exc
    except PodmanError as exc:
        raise BackendError(f"{what}: {exc}" if what else str(exc)) from exc
    except (KeyError, TypeError, ValueError) as exc:
        # A malformed answer from the service: not JSON (ValueError), or JSON without the
        # expected fields (KeyError) or of another shape (TypeError: None["Id"], list["Id"]).
        _log.debug("malformed answer from Podman", exc_info=True)
        raise BackendError(f"{what}: unexpected answer from Podman: {exc}") from exc

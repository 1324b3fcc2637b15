"""The consoles people see: each appliance's REST API and web page over HTTPS.

Serve one with ``await nursery.start(serve_console, backend)`` where
``backend`` satisfies :class:`ConsoleBackend`: ``MeshConsole(mesh, name)`` for
an appliance of a running ``Mesh``, ``ApplianceConsole(appliance)`` for one
engine appliance on its own (``mesh node``).
"""

from mesh.web.api import build_app as build_app
from mesh.web.backend import ConsoleBackend as ConsoleBackend
from mesh.validation.expiry import DEFAULT_EXPIRY_WINDOW as DEFAULT_EXPIRY_WINDOW
from mesh.validation.expiry import ExpiryWarning as ExpiryWarning
from mesh.validation.expiry import expiry_warning as expiry_warning
from mesh.web.certificate import certificate_summary as certificate_summary
from mesh.web.mesh_backend import ApplianceConsole as ApplianceConsole
from mesh.web.mesh_backend import MeshConsole as MeshConsole
from mesh.web.server import ConsoleAddress as ConsoleAddress
from mesh.web.server import serve_console as serve_console
from mesh.web.status import status_document as status_document

__all__ = [
    "ApplianceConsole",
    "ConsoleAddress",
    "ConsoleBackend",
    "DEFAULT_EXPIRY_WINDOW",
    "ExpiryWarning",
    "MeshConsole",
    "build_app",
    "certificate_summary",
    "expiry_warning",
    "serve_console",
    "status_document",
]

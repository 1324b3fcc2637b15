"""The engine: appliances as trio tasks on real mutual-TLS links.

The stable API is :class:`Mesh` (see ``mesh.appliances.mesh`` for every call),
:class:`ApplianceSpec` and :class:`Role` to describe appliances, and the
status snapshots :class:`LinkStatus`, :class:`LinkState`, :class:`ApplianceStatus`.
"""

from mesh.appliances.spec import ApplianceSpec, LinkPair, Role, link_pairs
from mesh.appliances.status import ApplianceStatus, LinkState, LinkStatus
from mesh.appliances.appliance import Appliance
from mesh.appliances.settings import EngineSettings
from mesh.appliances.mesh import Mesh, MeshNotSettled

__all__ = [
    "Appliance",
    "ApplianceSpec",
    "ApplianceStatus",
    "EngineSettings",
    "LinkPair",
    "LinkState",
    "LinkStatus",
    "Mesh",
    "MeshNotSettled",
    "Role",
    "link_pairs",
]

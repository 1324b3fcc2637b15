"""I/O around the validation core: CRLs over HTTP, TLS streams, links.

Re-exported here: the CRL fetcher and server, stable for the engine and
scenarios. Other modules of this package are imported by their own names.
"""

from mesh.net.crl_fetch import CrlFetcher as CrlFetcher
from mesh.net.crl_fetch import FetchRecord as FetchRecord
from mesh.net.crl_server import CrlServer as CrlServer
from mesh.net.crl_server import Fault as Fault
from mesh.net.proxy import ForwardProxy as ForwardProxy

__all__ = ["CrlFetcher", "FetchRecord", "CrlServer", "Fault", "ForwardProxy"]

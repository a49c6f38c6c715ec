"""PACS access without a GUI: find / retrieve / store over DIMSE (pynetdicom) and DICOMweb (dicomweb-client).

``connect("dicom://ORTHANC@pacs:4242")`` or ``connect("http://pacs:8042/dicom-web")`` gives a
:class:`~viewer.pacs.client.PacsClient`; the CLI (``radview pacs``) and the GUI dialogs use it alike.
"""

from viewer.pacs.address import DEFAULT_AET, ServerAddress, parse_address
from viewer.pacs.client import PacsClient, RetrieveResult, connect
from viewer.pacs.instances import StoreStatus
from viewer.pacs.query import Series, Study, StudyQuery

__all__ = ["DEFAULT_AET", "PacsClient", "RetrieveResult", "Series", "ServerAddress", "StoreStatus", "Study",
           "StudyQuery", "connect", "parse_address"]

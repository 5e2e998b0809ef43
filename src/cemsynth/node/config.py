"""The node's defaults, in one place (light: the command line reads them for ``--help``)."""

from __future__ import annotations

#: The node's own AE title, and the calling AE title it uses towards the destination.
DEFAULT_AE_TITLE = "CEMSYNTH"
#: Loopback only unless told otherwise: a research node must not face the hospital network
#: by accident.
DEFAULT_HOST = "127.0.0.1"
#: The registered DICOM port (IANA 11112, "dicom"), usable without root.
DEFAULT_PORT = 11112
#: ``watch``: seconds between looks at the folder (also how long a file must stay unchanged).
DEFAULT_INTERVAL_S = 2.0

"""Every default of the reader study, in one place.

Commands, library functions and the web app import these names rather than repeating numbers.
"""

from __future__ import annotations

from typing import Final

# Bootstrap resamples and seed, confidence level and false discovery rate: the evaluation's.
from cemsynth.evaluation.config import BOOTSTRAP_SAMPLES as BOOTSTRAP_SAMPLES
from cemsynth.evaluation.config import BOOTSTRAP_SEED as BOOTSTRAP_SEED
from cemsynth.evaluation.config import CONFIDENCE_LEVEL as CONFIDENCE_LEVEL
from cemsynth.evaluation.config import FDR_ALPHA as FDR_ALPHA

#: Minimum days between a reader's last answer in session 1 and the opening of session 2.
WASHOUT_DAYS: Final = 14

#: Lifetime of a sign-in token (hours); the reader signs in again after it.
TOKEN_TTL_HOURS: Final = 8.0

#: Address the web app listens on; only loopback is allowed unless the admin opts out.
HOST: Final = "127.0.0.1"
PORT: Final = 8000


#: How the breast-level BPE grades of one patient become the patient-level grade.
BPE_UNIT: Final = "patient"

#: Reader confidence scale (inclusive integer bounds).
CONFIDENCE_MIN: Final = 1
CONFIDENCE_MAX: Final = 5

#: Longest free-text comment the app stores (characters).
COMMENT_MAX_CHARS: Final = 2000

#: Reader and admin names: letters, digits, '_' and '-', at most 32 characters.
USER_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,32}$"
ADMIN_USER: Final = "admin"

#: scrypt parameters for credential hashes (RFC 7914); about 50 ms per hash on one core.
SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1

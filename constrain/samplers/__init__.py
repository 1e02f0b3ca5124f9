"""Distribution-faithful samplers over a :class:`~constrain.lm.LanguageModel`.

* :func:`lcd_sample` - locally constrained decoding (token masking): valid, biased.
* :func:`awrs_sample` / :func:`awrs_step` - adaptive weighted rejection sampling: LCD's
  distribution with few constraint checks, plus unbiased local-normaliser estimates.
* :class:`ASAp` - grammar-aligned sampling: converges to ``P_LM(x | x in L)``.
* :func:`smc` - sequential Monte Carlo with AWRS proposals: weighted particles targeting
  ``P_LM(x | x in L)``, with an optional critic.
* :func:`sample` - one entry point for all of them.

See docs/samplers.md for what each one guarantees.
"""

from .api import METHODS, as_language_model, sample
from .asap import ASAp
from .awrs import AWRSStep, awrs_sample, awrs_step
from .lcd import lcd_sample
from .result import (
    CriticError,
    ParticlesDeadError,
    SampleResult,
    SamplerError,
    SMCResult,
    TrieFullError,
)
from .smc import ess, resample_indices, smc

__all__ = [
    "sample",
    "METHODS",
    "as_language_model",
    "SampleResult",
    "SMCResult",
    "lcd_sample",
    "awrs_sample",
    "awrs_step",
    "AWRSStep",
    "ASAp",
    "smc",
    "ess",
    "resample_indices",
    "SamplerError",
    "CriticError",
    "ParticlesDeadError",
    "TrieFullError",
]

"""SynthFace: procedural, seeded, deterministic synthetic faces (see :mod:`lrfr.data.synthetic.generator`).

Parts: :mod:`~lrfr.data.synthetic.draws` (counter-based random numbers), :mod:`~lrfr.data.synthetic.parameters`
(identities and per-image conditions), :mod:`~lrfr.data.synthetic.rasterise` (HR rendering),
:mod:`~lrfr.data.synthetic.camera` (the native low-resolution camera chain).
"""

from lrfr.data.synthetic.generator import VERSION, SynthFace, sample_grid
from lrfr.data.synthetic.parameters import FINE, IdentityParams

__all__ = ["FINE", "VERSION", "IdentityParams", "SynthFace", "sample_grid"]

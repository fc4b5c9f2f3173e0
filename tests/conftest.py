"""The test suite names its own helper factories (``"tests.toy:make_toy"``) in configs: allow them."""

from lrfr.registry import allow_imports

allow_imports("tests")

"""``python -m robust_transfer.gpu_smoke``: see the package docstring."""
import sys

from .cli import main

sys.exit(main())

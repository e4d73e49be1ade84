"""Pure, synchronous numerical code: one module or sub-package per market. Imports nothing of ours."""

"""The image engine: containers (lossless metadata surgery per format), the XMP and EXIF
we write, tagging, decoding (pixels), responsive variants and the re-encode rule.

Depends only on the base modules (errors, policy, contract); knows nothing of sites."""

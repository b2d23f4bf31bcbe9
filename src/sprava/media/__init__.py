"""Media analysis: metadata, perceptual hashes, near-duplicates, face redaction.

Needs the ``media`` extra (Pillow, PyAV, pdqhash, onnxruntime, faiss). Every function here
treats its input as hostile: limits come from :class:`sprava.media.limits.MediaLimits`,
and a file that cannot be analysed raises ``BadInputError`` with a code that says why.
"""

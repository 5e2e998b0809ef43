"""Reader study: blinded session builder, a web reading app and the reader statistics.

The three stages are separate commands with files on disk between them:

``build``  (:mod:`.build`)  manifest + clinical and synthetic DICOM -> a blinded study folder
``serve``  (:mod:`.server`) the study folder -> a local web app where readers score cases
``stats``  (:mod:`.stats`, :mod:`.report`) ``scores.csv`` + ``truth.csv`` -> summary and report

See ``docs/reader-study.md`` for the study design and the statistical methods.
"""

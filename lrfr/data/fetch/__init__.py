"""Fetch, verify, resume and unpack the real datasets into the layouts their loaders read.

One concern per module: :mod:`~lrfr.data.fetch.catalogue` (what each dataset is, where its files come
from and what they must match: every URL and checksum, and nowhere else), :mod:`~lrfr.data.fetch.download`
(resumable HTTP downloads and checksum verification), :mod:`~lrfr.data.fetch.archives` (member checks
and unpacking), :mod:`~lrfr.data.fetch.prepare` (the whole preparation of a dataset folder and the data
scripts' command line). This package imports none of them, so that a module that only needs the
catalogue (``lrfr.data.detect``) never loads the downloader.
"""

"""The set format and its trust: what makes a folder of files a backup set, and which sets
a reader may believe.

``manifest`` is the format (frozen dataclasses, checked against ``schemas/`` before
anything is built from it); ``stored`` is what a destination holds (its sets, newest
first, the planted and the future passed over); ``trust`` decides which of them prove
themselves (the HMAC keyed from the set's data key, a signature for recipients' sets);
``reserve`` takes a run's set id at every destination; ``retention`` is a pure plan of
what to keep; ``drill_records`` are the sealed records of restore drills. Set ids and the
names a set's folder may take are in ``names.py``, where the storage backends read them
too.

May import: errors, names, urls, github, stream, crypto, storage.
"""

"""Crypto: OpenPGP through the system's ``gpg``, and the HMAC that proves a set.

``gpg`` runs the binary (throwaway homes, passphrases on pipes, streams between OS pipes);
``keys`` is a set's data key (wrapped in ``key.gpg``, unwrapped, small messages sealed with
it) and the ``Encryption`` a manifest records; ``streaming`` encrypts and decrypts entries
as pipeline stages; ``openpgp`` checks that a stream is an encrypted message before gpg
reads it; ``auth`` is the HMAC keyed from a data key and the detached signatures of
recipients' sets. What is MACed or signed is the set format's choice (``sets/trust.py``).

May import: errors, stream.
"""

"""Container images (SPEC §3): ``reference`` parses ``oci://`` URLs, ``registry`` speaks the
OCI distribution API (manifests, blobs, uploads), ``auth`` authenticates as a registry
asks (credentials, the token flow), ``answers`` reads its answers with care, ``layout`` is
the OCI image layout a stored ``oci-image`` entry holds, ``tree`` fetches the manifests and
blobs that make an image, ``packages`` lists a GitHub owner's container packages.

May import: errors, names, github, stream.
"""

"""Container images (SPEC §3): ``reference`` parses ``oci://`` URLs, ``registry`` speaks the
OCI distribution API (with the token flow), ``layout`` is the OCI image layout a stored
``oci-image`` entry holds, ``tree`` fetches the manifests and blobs that make an image,
``packages`` lists a GitHub owner's container packages.

May import: errors, names, github, stream.
"""

"""offsite: backup and disaster recovery for teams that live on GitHub.

The layers, lowest first. A module imports from its own layer and those below it, never
from one above, and no import runs in a circle; each package's docstring names the units
its modules may import (``tests/unit/test_layering.py`` holds the tree to both):

    errors                                    one error type, its exit codes
    names urls durations retry shards config  small helpers: names and set ids, URLs, …
    github table                              GitHub's environment, a workflow's I/O, its API
    stream                                    bytes in motion: readers, the pipeline, tar
    crypto                                    gpg, a set's data key, the HMAC
    storage                                   a small protocol, a backend per URL scheme
    sets                                      the set format and its trust
    wal oci                                   PostgreSQL's WAL archive; container images
    sources                                   one module per entry kind
    pitr selection mirror                     decisions the operations share
    backup baseline restore copy prune rekey monitor  the operations; a diff's base
    verify drill restore_github rebuild_git   operations that restore
    cli                                       one module per verb
    launch __main__                           the entry points
"""

__version__ = "0.1.0"

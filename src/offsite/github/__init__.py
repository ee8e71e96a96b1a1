"""GitHub, as offsite meets it: where GitHub is and which token it is shown (``env``, the
one reader of those variables), a workflow's I/O (``gha``: step outputs, the step summary,
masks and annotations, and every warning offsite prints), the API's repositories
(``repos``), a repository's metadata exported item by item (``metadata``, its index and
layout ``metadata_index``) and GitHub Artifacts as a destination the actions upload
(``artifacts``: the names a set's artifact may take), and a repository written back from
what a set holds (``writer`` paced writes, ``held`` the restored metadata, ``rebuild`` its
items, ``rebuild_releases`` its releases, ``rebuild_settings`` its settings,
``rebuild_report`` what a run was asked and did: SPEC §11). Reading artifacts back is a
storage backend (``storage/gh_artifacts.py``); the monitor reads workflow runs
(``monitor/github.py``).

May import: errors, names.
"""

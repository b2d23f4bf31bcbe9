"""The public transparency site: figures, verified incidents, units implicated, and how
to check it all, as plain files in every UI language (docs/publish.md).

Modules: ``public`` (what may be said, read through an allow-list), ``guard`` (no
restricted name in published text), ``coarse`` (places rounded to a grid), ``chart``
(SVG charts), ``document`` (``data/public.json``), ``site`` (the pages), ``output``
(staging and the atomic swap), ``build`` (all of it, and the custody record).
"""

from sprava.publish.build import PUBLISH, Published, publish_site

__all__ = ["PUBLISH", "Published", "publish_site"]

"""inlink: an open, self-hosted backlink index.

Data flows sources -> extract -> index -> rank -> query -> api/cli/web; see docs/architecture.md.
"""

__version__ = "0.1.0"

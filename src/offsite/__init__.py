"""offsite: backup and disaster recovery for teams that live on GitHub."""

__version__ = "0.1.0"

"""The monitor: are the backups fresh, and does anyone hear when they are not."""

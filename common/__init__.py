"""Helpers every layer of the suite may import (nothing here imports the suite): atomic files, checksums."""

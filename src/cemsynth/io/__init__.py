"""Formats, the ground floor: images (DICOM, PNG, TIFF), masks, manifests, CSV tables, JSON
and DICOM dataset building, atomic writes and input budgets. Nothing here knows a stage;
every other package may import it (docs/architecture.md)."""

"""Event data: representation, readers, embedded datasets, binning."""

"""Listing photos: re-encoding, the media folder, and serving them to who may see them."""

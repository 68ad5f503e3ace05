"""The web storefront (and the staff console): server-rendered pages over the public API v1."""

"""Point-in-time features of (campaign or brief, creator) pairs, grouped into signal
families, and the 0-100 indices built from them."""

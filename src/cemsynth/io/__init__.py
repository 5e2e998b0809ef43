"""Reading and writing images, masks, manifests and the preprocessing cache."""

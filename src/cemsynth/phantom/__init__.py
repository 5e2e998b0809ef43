"""The built-in dataset: a physics-based simulator of contrast-enhanced mammography.

It models the compressed breast (thickness roll-off, skin, nipple, pectoral muscle, vessels,
fibroglandular texture), iodine uptake (background parenchymal enhancement and lesions), the
low- and high-energy acquisitions (polyenergetic spectra, attenuation, scatter, quantum noise)
and the vendor-style weighted log subtraction that makes the recombined image. Every image comes
with its ground truth. See ``docs/phantom.md`` for the model and its sources.
"""
